import { fork, type ChildProcess } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import type { PriorWork } from '../agents/taskFile';
import { PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import { assertName } from '../model/ids';
import type {
  BranchCleanup,
  CommitAllOptions,
  MergeOutcome,
  PreparedWorktree,
  WorkspacePort,
} from '../ports/workspacePort';
import { PendingReplies } from '../rpc/requestReply';
import { workspaceReplySchema, type WorkspaceMethod } from './workspaceProtocol';

/**
 * The WorkspacePort with its git work done in a worker process (workspaceWorker.ts). The extension
 * uses it: a pipeline run starts thousands of git processes, and each start from the extension
 * host would block the editor's extensions for milliseconds; this starts one process, once. The
 * worker is started on first use and again after it dies; a call in flight when it dies fails with
 * a git error, which the monitor treats like any failed git call.
 */
export class RemoteWorkspace implements WorkspacePort, Disposable {
  private worker: ChildProcess | undefined;
  private ready: Promise<ChildProcess> | undefined;
  private readonly pending = new PendingReplies();
  private readonly worktreeRoot: string;

  constructor(
    private readonly workerScript: string,
    private readonly repoRoot: string,
    worktreeRoot: string,
    private readonly options: {
      /**
       * How much lower than this process's the worker's priority is, and so its git processes'
       * (they inherit it). In the extension host, git's checkouts and merges run in the editor's
       * own scheduling group; at equal priority the host waited tens of ms for a core behind them.
       */
      niceness?: number;
    } = {},
  ) {
    this.worktreeRoot = resolve(repoRoot, worktreeRoot);
  }

  worktreePath(agentId: string): string {
    return join(this.worktreeRoot, assertName(agentId, 'agent id'));
  }

  private start(): Promise<ChildProcess> {
    this.ready ??= new Promise<ChildProcess>((resolveReady, reject) => {
      const child = fork(this.workerScript, [this.repoRoot, this.worktreeRoot], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        execArgv: [],
        serialization: 'json',
      });
      lowerPriority(child.pid, this.options.niceness ?? 0);
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
      child.on('message', (raw: unknown) => {
        const r = workspaceReplySchema.safeParse(raw);
        if (!r.success) return;
        if (r.data.id === 0) {
          this.worker = child;
          resolveReady(child);
          return;
        }
        this.pending.settle(r.data);
      });
      child.on('exit', (code, signal) => {
        const err = new PipelineError(
          'git',
          `The git worker exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}.`,
          { fix: 'It is restarted on the next git operation; if this repeats, check the repository with `git fsck`.' },
        );
        this.worker = undefined;
        this.ready = undefined;
        reject(err);
        this.pending.failAll(err);
      });
      child.on('error', (e) => reject(new PipelineError('git', `Cannot start the git worker: ${e.message}.`)));
    });
    return this.ready;
  }

  private async call<T>(method: WorkspaceMethod, args: unknown[]): Promise<T> {
    const child = await this.start();
    const { id, result } = this.pending.open();
    child.send({ id, method, args }, (err) => {
      if (err) this.pending.fail(id, new PipelineError('git', `Cannot reach the git worker: ${err.message}.`));
    });
    return (await result) as T;
  }

  repair(agentIds: readonly string[]): Promise<string[]> {
    return this.call('repair', [agentIds]);
  }
  prepare(agentId: string, taskId: string, base: string): Promise<PreparedWorktree> {
    return this.call('prepare', [agentId, taskId, base]);
  }
  commitAll(agentId: string, message: string, branch?: string, options?: CommitAllOptions): Promise<boolean> {
    // JSON has no undefined: a missing branch before options goes as null, which commitAll takes as none.
    const args: unknown[] = [agentId, message];
    if (branch !== undefined || options) args.push(branch ?? null);
    if (options) args.push(options);
    return this.call('commitAll', args);
  }
  setAside(agentId: string, ref: string, message: string): Promise<string | null> {
    return this.call('setAside', [agentId, ref, message]);
  }
  priorWork(taskId: string, base: string): Promise<PriorWork> {
    return this.call('priorWork', [taskId, base]);
  }
  ensureBranch(name: string, from: string): Promise<void> {
    return this.call('ensureBranch', [name, from]);
  }
  merge(taskId: string, into: string, message: string): Promise<MergeOutcome> {
    return this.call('merge', [taskId, into, message]);
  }
  deleteMergedBranch(taskId: string, into: string): Promise<BranchCleanup> {
    return this.call('deleteMergedBranch', [taskId, into]);
  }

  dispose(): void {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w?.connected) w.disconnect();
  }
}

/** Gives `pid` this process's niceness plus `by` (at most 19); a priority that cannot be lowered stays. */
function lowerPriority(pid: number | undefined, by: number): void {
  if (pid === undefined || by <= 0) return;
  try {
    setPriority(pid, Math.min(19, getPriority() + by));
  } catch {
    // Not permitted or already gone: git runs at the editor's priority, as before.
  }
}
