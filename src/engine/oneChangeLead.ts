import type { LeaderInfo, LeaseSource } from './ports/statePort';

/**
 * Waiting for a holder that leads for one change only (a `task add` while nobody leads), through
 * whichever lease source the pipeline uses: the file lease or the PostgreSQL leader row both say
 * `oneChange` in the holder's info.
 */

/** How often a process waiting for a one-change lease looks again. */
export const ONE_CHANGE_POLL_MS = 25;

/**
 * Waits while the pipeline is led for one change, for at most `limitMs`: who leads then (null:
 * nobody). `onWait` is told once, when there is a wait. A one-change holder that hangs keeps its
 * lease only until its heartbeat lapses.
 */
export async function untilNoOneChangeLead(
  leases: Pick<LeaseSource, 'current'>,
  limitMs: number,
  onWait?: (holder: LeaderInfo) => void,
): Promise<LeaderInfo | null> {
  const end = Date.now() + limitMs;
  let told = false;
  for (;;) {
    const leader = await leases.current();
    if (!leader?.oneChange || Date.now() >= end) return leader;
    if (!told) onWait?.(leader);
    told = true;
    await new Promise((r) => setTimeout(r, ONE_CHANGE_POLL_MS));
  }
}
