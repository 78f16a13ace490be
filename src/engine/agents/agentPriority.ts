import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { AGENT_NICENESS_DEFAULT } from '../model/configSchema';
import { lowerSessionGroup } from './sessionGroup';

/**
 * Agents run below the engine's CPU priority (`agentNiceness` in the configuration). The engine's
 * coordination work (short git commands on the hand-off path) is small and latency-critical; the
 * agents' work (a CLI, the builds and tests it runs) is throughput work. With the agents niced, a
 * busy machine gives its cores to the engine first, and the user's editor stays responsive; an idle
 * machine gives the agents everything all the same.
 *
 * A runner lowers the priority of the one process an agent's command descends from (its child, the
 * shell of its window); whatever that process starts inherits it. A child is started through
 * `nice` (launch()), so it never runs a moment at the engine's priority: lowered after the spawn, a
 * shell (`sh -c`, every stage check) has forked its first command before the engine gets to it. On
 * Windows, which has no `nice`, `os.setPriority` lowers it after the spawn; it maps niceness to
 * priority classes (0–9 normal, 10–18 below normal, 19 idle), which child processes inherit too.
 */
export class AgentPriority {
  /** Agents whose log already says that their priority could not be lowered: said once each. */
  private noted = new Set<string>();

  /** `niceness` is added to the engine's own: 0 runs agents at the engine's priority. */
  constructor(readonly niceness: number = AGENT_NICENESS_DEFAULT) {}

  /** The niceness an agent's processes get: the engine's own plus the setting, at most 19 (the lowest). */
  target(): number {
    return Math.min(19, getPriority() + this.niceness);
  }

  /**
   * What to spawn so that `command` starts at the agents' niceness: `nice -n <setting> command
   * args…` when the command is found (on the PATH of `env`, or relative to `cwd`) and so is `nice`;
   * `nice` then runs it in its own process (same pid, same process group). A command that is not
   * found, or not executable, is spawned as it is, so its start error stays Node's own ("command not
   * found: <cmd>"); `lowerAfterSpawn` then says the caller must set() the child's priority itself.
   */
  launch(
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    cwd?: string,
  ): { command: string; args: string[]; lowerAfterSpawn: boolean } {
    const asIs = (lowerAfterSpawn: boolean) => ({ command, args: [...args], lowerAfterSpawn });
    // A niceness of 0 is the engine's own, which a child inherits.
    if (this.niceness === 0) return asIs(false);
    if (process.platform === 'win32') return asIs(true);
    const nice = findExecutable('nice', env.PATH, cwd);
    if (nice === undefined || findExecutable(command, env.PATH, cwd) === undefined) return asIs(true);
    return { command: nice, args: ['-n', String(this.niceness), '--', command, ...args], lowerAfterSpawn: false };
  }

  /**
   * Gives `pid` the agents' niceness, at once (before it returns); says why it could not, when it
   * could not: the process gone already, or a niceness the user may not lower back without privilege.
   */
  set(pid: number): string | undefined {
    const target = this.target();
    try {
      setPriority(pid, target);
      return undefined;
    } catch (e) {
      // Node's SystemError keeps the errno name (ESRCH, EACCES) in `info`; its `code` is generic.
      const err = e as NodeJS.ErrnoException & { info?: { code?: string } };
      const why = err.info?.code ?? err.code ?? err.message;
      return `could not be given niceness ${target} (${why}); it runs at the priority it had`;
    }
  }

  /**
   * Gives an agent's process the agents' niceness, at once (before the returned promise's first
   * wait), and its session's scheduling group too (sessionGroup.ts), in the background: without
   * privilege the kernel takes one group change every 100 ms machine-wide, and agents that start
   * together would wait their turns to start. A failure leaves the agent at the priority it had and
   * never fails its run; it is said once in the agent's log. Resolves when the process's own
   * niceness is set (and its note, if it could not be, written).
   */
  async apply(pid: number, agentId: string, logFile: string): Promise<void> {
    const failed = this.set(pid);
    if (failed !== undefined) return this.note(agentId, logFile, failed);
    void this.group(pid)
      .then((why) => (why === undefined ? undefined : this.note(agentId, logFile, why)))
      .catch(() => undefined);
  }

  /**
   * Gives the session group of `pid` (a process that leads a session of its own: a terminal's
   * shell, a detached child) the agents' niceness; without it, niceness orders only the processes of
   * one session. Resolves to why it could not, or undefined.
   */
  group(pid: number): Promise<string | undefined> {
    return lowerSessionGroup(pid, this.niceness);
  }

  /** Says once in the agent's log (whatever the failure) that its priority could not be lowered. */
  async note(agentId: string, logFile: string, failed: string): Promise<void> {
    if (this.noted.has(agentId)) return;
    this.noted.add(agentId);
    // The log's directory may not be there yet: a window's shell line makes it, after this.
    await mkdir(dirname(logFile), { recursive: true })
      .then(() => appendFile(logFile, `[pipeline] this agent ${failed}.\n`))
      .catch(() => undefined);
  }
}

/**
 * Where `name` would be run from, as execvp finds it: a name with a slash as it is (from `cwd`),
 * else the first executable file of that name in a directory of `path`.
 */
function findExecutable(name: string, path: string | undefined, cwd: string | undefined): string | undefined {
  if (name === '') return undefined;
  if (name.includes('/')) return runnable(isAbsolute(name) ? name : resolve(cwd ?? '.', name)) ? name : undefined;
  for (const dir of (path ?? '').split(delimiter)) {
    const candidate = join(resolve(cwd ?? '.', dir === '' ? '.' : dir), name);
    if (executable(candidate)) return runnable(candidate) ? candidate : undefined;
  }
  return undefined;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * An executable whose `#!` interpreter is there too: exec fails with ENOENT for a script whose
 * interpreter is missing, which Node reports as a start error, and behind `nice` would be an exit.
 */
function runnable(file: string): boolean {
  if (!executable(file)) return false;
  const head = Buffer.alloc(256);
  let n = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      n = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  const text = head.subarray(0, n).toString('latin1');
  if (!text.startsWith('#!')) return true;
  const interpreter = text.slice(2).split('\n')[0]!.trim().split(/\s+/)[0] ?? '';
  return interpreter !== '' && executable(interpreter);
}
