import { readFile, writeFile } from 'node:fs/promises';
import { getPriority } from 'node:os';

/**
 * Linux's scheduler, with autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, the default of
 * most distributions' kernels), first shares the CPU between sessions, each session's processes one
 * group, and only then between the processes of a group by their niceness. A process that starts a
 * session of its own (a terminal's shell, a tmux window's, a detached child) is a group of its own:
 * niced inside it, it still gets as much CPU as the editor's whole group (the extension host, VS
 * Code's server, the engine), so five busy agents leave the editor a sixth of the machine, and its
 * extension host waits tens of milliseconds for a core at a time. A group has a niceness of its own
 * (`/proc/<pid>/autogroup`, which its owner may raise without privilege); an agent's group gets the
 * agents' niceness added to the engine's group's own.
 */

export interface Autogroup {
  /** The group's number, or `default` for the kernel's default group (see {@link autogroupOf}). */
  id: string;
  nice: number;
}

/**
 * The group `pid` is in: `/autogroup-123 nice 0`; undefined where there is no such file (not Linux,
 * a kernel without autogroups) or the process is gone. The file is there but empty for a process in
 * the kernel's default group: one whose ancestors never started a session since boot (a CI runner's
 * job, a container's first process), or one in a CPU cgroup of its own, where autogroups do not
 * apply. Such a process competes for the CPU as itself, by its own niceness, against each
 * autogroup as a whole; it is `default` here, with its own niceness.
 */
export async function autogroupOf(pid: number | 'self'): Promise<Autogroup | undefined> {
  const text = await readFile(`/proc/${pid}/autogroup`, 'utf8').catch(() => undefined);
  return parseAutogroup(text, () => getPriority(pid === 'self' ? 0 : pid));
}

/** What {@link autogroupOf} reads, from the file's text; `ownNice` is asked only for an empty file. */
export function parseAutogroup(text: string | undefined, ownNice: () => number): Autogroup | undefined {
  if (text === undefined) return undefined;
  if (text.trim() === '') {
    try {
      return { id: 'default', nice: ownNice() };
    } catch {
      return undefined; // gone since its file was read
    }
  }
  const m = /^\/autogroup-(\d+)\s+nice\s+(-?\d+)/.exec(text);
  return m?.[1] && m[2] ? { id: m[1], nice: Number(m[2]) } : undefined;
}

/**
 * Gives the session group of `pid` the niceness of the engine's own group plus `niceness` (at most
 * 19), when `pid` is in a group other than the engine's; never raises a group's priority, never
 * touches the engine's own group. Resolves to why it could not, or undefined (done, or nothing to do:
 * no autogroups, the same group, a group already as low).
 */
export async function lowerSessionGroup(pid: number, niceness: number): Promise<string | undefined> {
  if (process.platform !== 'linux' || niceness <= 0) return undefined;
  const [own, theirs] = await Promise.all([autogroupOf('self'), autogroupOf(pid)]);
  // Two processes in the default group share it; an agent in the default group while the engine is
  // in an autogroup has no group of its own to lower (its niceness alone ranks it).
  if (!own || !theirs || own.id === theirs.id || theirs.id === 'default') return undefined;
  const target = Math.min(19, own.nice + niceness);
  if (theirs.nice >= target) return undefined;
  let code = '';
  for (let attempt = 0; attempt < GROUP_TRIES; attempt++) {
    try {
      await writeFile(`/proc/${pid}/autogroup`, String(target));
      return undefined;
    } catch (e) {
      code = (e as NodeJS.ErrnoException).code ?? String(e);
      // Gone since its group was read (an agent that ended at once): nothing left to lower.
      if (code === 'ENOENT' || code === 'ESRCH') return undefined;
      // Without privilege, the kernel takes one change of a group's niceness every 100 ms, machine
      // wide, and says EAGAIN to the others: agents that start together take turns.
      if (code !== 'EAGAIN') break;
      await new Promise((r) => setTimeout(r, GROUP_RETRY_MS));
    }
  }
  return `its session's scheduling group could not be given niceness ${target} (${code}); the group competes with the editor's as an equal`;
}

/** How often, and how far apart, a change the kernel refused with EAGAIN is tried. */
const GROUP_TRIES = 10;
const GROUP_RETRY_MS = 110;
