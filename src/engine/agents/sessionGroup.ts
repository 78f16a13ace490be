import { readFile, writeFile } from 'node:fs/promises';

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

interface Autogroup {
  id: string;
  nice: number;
}

/** `/autogroup-123 nice 0`, or undefined where there is no such file (not Linux, no autogroups). */
async function autogroupOf(pid: number | 'self'): Promise<Autogroup | undefined> {
  const text = await readFile(`/proc/${pid}/autogroup`, 'utf8').catch(() => undefined);
  const m = text === undefined ? null : /^\/autogroup-(\d+)\s+nice\s+(-?\d+)/.exec(text);
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
  if (!own || !theirs || own.id === theirs.id) return undefined;
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
