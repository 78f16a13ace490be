import { readdir, readFile, readlink } from 'node:fs/promises';
import { sep } from 'node:path';

/**
 * Is a git process working in this repository right now? Asked before a stale `index.lock` is
 * deleted: deleting the lock of a live git command corrupts its index update.
 *
 * The choice: a process counts when its name is `git` or `git-*` and its working directory or one
 * of its arguments lies inside one of the given directories (the main working tree, the common git
 * dir, the worktree root). git changes into the repository for `git -C`, so its cwd shows where it
 * works. A git process whose cwd or arguments cannot be read (another user's) counts as alive:
 * keeping a stale lock costs a clear error, deleting a live one costs a corrupt index. Without
 * /proc (macOS, Windows) nothing can be checked and the answer is `undefined`: keep the lock.
 */

export interface GitProcess {
  readonly pid: number;
  readonly reason: string;
}

function inside(p: string, dirs: readonly string[]): boolean {
  return dirs.some((d) => p === d || p.startsWith(d.endsWith(sep) ? d : d + sep));
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The pids /proc lists, but this process's; undefined without /proc. */
async function otherPids(): Promise<number[] | undefined> {
  try {
    return (await readdir('/proc'))
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return undefined;
  }
}

/** A zombie has exited and holds nothing; the state follows the parenthesised command name. */
function isZombie(stat: string): boolean {
  return /\)\s+Z\s/.test(stat);
}

/** The parent's pid, which follows the state. */
function parentOf(stat: string): number {
  return Number(/\)\s+\S+\s+(\d+)/.exec(stat)?.[1]);
}

/**
 * Live git processes working in `dirs`; undefined when this platform has no /proc to look at.
 *
 * With `exceptChildrenOf` (our own pid and the spawn server's, during a run), git commands this process started are left
 * out: the layer's own locks keep them from ever holding a lock another of our commands waits for,
 * and in a busy pipeline one of them is nearly always running, so counting them would keep a stale
 * lock for ever. git processes started by anyone else (an agent, an editor, a detached `gc`) count.
 */
export async function gitProcessesIn(
  dirs: readonly string[],
  exceptChildrenOf?: readonly number[],
): Promise<GitProcess[] | undefined> {
  const pids = await otherPids();
  if (!pids) return undefined;
  const found: GitProcess[] = [];
  for (const pid of pids) {
    const p = String(pid);
    const comm = (await readText(`/proc/${p}/comm`))?.trim();
    if (!comm || !(comm === 'git' || comm.startsWith('git-'))) continue;
    const stat = await readText(`/proc/${p}/stat`);
    // A zombie holds no lock.
    if (stat && isZombie(stat)) continue;
    if (exceptChildrenOf !== undefined && stat && exceptChildrenOf.includes(parentOf(stat))) continue;
    let cwd: string | undefined;
    try {
      cwd = await readlink(`/proc/${p}/cwd`);
    } catch (e) {
      // Gone since the listing: it holds nothing. Any other failure (EACCES) leaves it unknown.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      cwd = undefined;
    }
    const args = (await readText(`/proc/${p}/cmdline`))?.split('\0').filter(Boolean);
    // A process that exited while it was being read (a short git command of another program, most
    // often) holds nothing: only one still there that cannot be read counts as alive.
    if ((cwd === undefined || args === undefined) && !(await stillThere(p))) continue;
    if (cwd === undefined || args === undefined) {
      found.push({ pid, reason: `${comm} (pid ${pid}) cannot be inspected` });
    } else if (inside(cwd, dirs)) {
      found.push({ pid, reason: `${args.join(' ')} (pid ${pid}) runs in ${cwd}` });
    } else if (args.some((a) => inside(a, dirs) || dirs.some((d) => a.includes(d)))) {
      found.push({ pid, reason: `${args.join(' ')} (pid ${pid}) works on the repository` });
    }
  }
  return found;
}

/** Whether process `pid` still exists (its /proc entry is there and it is not a zombie). */
async function stillThere(pid: string): Promise<boolean> {
  const stat = await readText(`/proc/${pid}/stat`);
  return stat !== undefined && !isZombie(stat);
}

/**
 * Live processes of any kind whose working directory lies inside `dir` (an agent's worktree: the
 * agent's CLI, a shell a person opened there, a git command), leaving out this process and, with
 * `exceptChildrenOf`, its children, and processes whose working directory cannot be read (another
 * user's). Undefined without /proc.
 */
export async function processesWorkingIn(
  dir: string,
  exceptChildrenOf?: readonly number[],
): Promise<GitProcess[] | undefined> {
  const pids = await otherPids();
  if (!pids) return undefined;
  const found: GitProcess[] = [];
  for (const pid of pids) {
    const p = String(pid);
    const stat = await readText(`/proc/${p}/stat`);
    if (!stat || isZombie(stat)) continue;
    if (exceptChildrenOf !== undefined && exceptChildrenOf.includes(parentOf(stat))) continue;
    let cwd: string;
    try {
      cwd = await readlink(`/proc/${p}/cwd`);
    } catch {
      // Gone, or another user's process: one cannot work in our worktree without our permission,
      // and a git process of theirs is counted by gitProcessesIn anyway.
      continue;
    }
    if (inside(cwd, [dir])) found.push({ pid, reason: `pid ${pid} works in ${cwd}` });
  }
  return found;
}
