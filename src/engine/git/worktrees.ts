import { existsSync } from 'node:fs';
import { mkdir, readdir, realpath } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TASK_DIR } from '../agents/taskFile';
import { PipelineError } from '../errors';
import { assertName, isName } from '../model/ids';
import type { CommitAllOptions } from '../ports/workspacePort';
import { DirtyWorktreeError } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { withMessageFile } from './messageFile';
import { setAsideWork } from './setAside';
import { checkoutTask, type CheckoutOptions, type TaskCheckout } from './taskCheckout';
import { excludeTaskDir } from './taskDirExclude';
import { assertClean, commitOrStash, detachClean, switchWorktree } from './worktreeGuards';
import { canonicalPath, findWorktree, listWorktrees, type WorktreeEntry } from './worktreeList';
import { lockPath, readRegistry, type RegisteredWorktree } from './worktreeRegistry';
import { uncommittedFiles, unfinishedOperation, worktreeStatus } from './worktreeState';

export interface AgentWorktree {
  readonly agentId: string;
  readonly path: string;
  /** The branch checked out, undefined when detached (no task). */
  readonly branch: string | undefined;
  readonly head: string;
  /** Created by this call (or re-created because its directory had gone). */
  readonly created: boolean;
}

/**
 * New worktrees whose files are checked out at once: one per core (a checkout is mostly CPU and
 * file writes), at least two so one process's disk waits are filled by the other.
 */
const FILL_CONCURRENCY = Math.max(2, availableParallelism());

/**
 * `fn` over `items`, at most `limit` at a time, every one run to its end (a failure does not stop
 * the others, which still run under their caller's locks): the outcomes in the items' order.
 */
async function settleInParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<Array<PromiseSettledResult<R>>> {
  const out = new Array<PromiseSettledResult<R>>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i]!) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A worktree registered whose files could not be checked out (the checkout's error as `cause`). */
class UnfilledWorktree extends Error {
  constructor(override readonly cause: unknown) {
    super('The worktree was registered but its files could not be checked out.');
  }
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

/**
 * A worktree per agent at `<worktreeRoot>/<agentId>`, a branch per task (`pipeline/<TASK-ID>`).
 * Every operation holds, for its whole sequence of checks and commands, the locks of what it changes
 * (repoLock.ts): its agent's worktree, the task branch, the worktree it takes the branch from; the
 * whole repository only to add, re-create or remove a worktree. So operations for different agents
 * run side by side, and two on the same worktree or branch queue instead of racing on git's locks.
 *
 * What to lock depends on the registry (which worktree has the task branch checked out, whether the
 * agent's worktree exists), which can change until the locks are held. So an operation plans its
 * locks from the registry on disk, takes them, plans again under them, and starts over with the new
 * plan when it needs a lock it does not hold (after a few rounds, with the whole repository).
 */
export class Worktrees {
  /** Absolute: the caller's worktreeRoot resolved against the repository root. */
  readonly root: string;
  /** `root` with symlinks resolved, once it exists (it does not move while the engine runs). */
  private canonicalRoot: string | undefined;

  constructor(
    readonly repo: GitRepo,
    worktreeRoot: string,
  ) {
    this.root = resolve(repo.root, worktreeRoot);
  }

  /** Where the agent's worktree lives. Validates the id: it becomes a directory name. */
  pathOf(agentId: string): string {
    return join(this.root, assertName(agentId, 'agent id'));
  }

  /** The agent that owns the worktree at `path`, if it is one of ours. */
  async agentOf(path: string): Promise<string | undefined> {
    const p = await canonicalPath(path);
    const root = await this.rootPath();
    if (dirname(p) !== root) return undefined;
    const name = p.slice(root.length + 1);
    return isName(name) ? name : undefined;
  }

  /**
   * The agent's worktree, created when missing: detached at `base` (default: the main working
   * tree's HEAD), since the agent gets a branch only with a task. A worktree git still knows but
   * whose directory has gone is re-created on the same branch or commit, so nothing is lost.
   */
  async ensureWorktree(agentId: string, base = 'HEAD'): Promise<AgentWorktree> {
    return (await this.ensureWorktrees([agentId], base))[0]!;
  }

  /**
   * ensureWorktree for several agents at once. Worktrees that exist need only their own locks.
   * Missing ones are registered one after the other under the repository's exclusive lock
   * (`worktree add --no-checkout`, a few milliseconds each: git 2.39's `worktree add` is not safe
   * side by side, one reads the registry entry another is still writing and dies with "failed to
   * read worktrees/<id>/commondir"), then their files are checked out side by side, each under its
   * own worktree's lock, held since before it was registered, and the repository only shared, so
   * other agents' operations go on meanwhile (fill, below).
   */
  async ensureWorktrees(agentIds: readonly string[], base = 'HEAD'): Promise<AgentWorktree[]> {
    const unique = [...new Set(agentIds)];
    if (unique.length < agentIds.length) {
      const made = new Map((await this.ensureWorktrees(unique, base)).map((w) => [w.agentId, w]));
      return agentIds.map((id) => made.get(id)!);
    }
    const paths = agentIds.map((id) => this.pathOf(id));
    const allPresent = async (): Promise<boolean> => {
      const registry = await readRegistry(this.repo.root, this.repo.commonDir);
      for (const p of paths) if (!(await this.registered(p, registry))?.present) return false;
      return true;
    };
    if (await allPresent()) {
      const found = await this.repo.locked({ worktrees: paths }, async () => {
        // Checked again under the locks: a worktree may have gone meanwhile.
        if (!(await allPresent())) return undefined;
        const entries = await listWorktrees(this.repo);
        return Promise.all(agentIds.map(async (id) => (await this.ensureWorktreeIn(entries, id, base)).worktree));
      });
      if (found) return found;
    }
    const outcomes = await this.repo.lockedThenShared(
      { worktrees: paths },
      async () => {
        let entries = await listWorktrees(this.repo);
        // Each agent on its own: one that cannot be made (a directory in the way) does not leave
        // the others registered without their files.
        const made: Array<PromiseSettledResult<{ worktree: AgentWorktree; fill?: string }>> = [];
        for (const id of agentIds) {
          try {
            const r = await this.ensureWorktreeIn(entries, id, base, { checkout: false });
            made.push({ status: 'fulfilled', value: r });
            // A re-created worktree may have taken a branch another entry names: read the list again.
            if (r.changed && !r.fill) entries = await listWorktrees(this.repo);
          } catch (reason) {
            made.push({ status: 'rejected', reason });
          }
        }
        return made;
      },
      (made) =>
        settleInParallel(made, FILL_CONCURRENCY, async (m) => {
          if (m.status === 'rejected') throw m.reason;
          if (m.value.fill) await this.fill(m.value.worktree.path, m.value.fill);
          return m.value.worktree;
        }),
    );
    const unfilled = outcomes.flatMap((o, i) =>
      o.status === 'rejected' && o.reason instanceof UnfilledWorktree ? [paths[i]!] : [],
    );
    if (unfilled.length > 0) {
      // As `git worktree add` does when its checkout fails: the half-made worktree is unregistered,
      // so the next call makes it again rather than handing out one whose files all look deleted.
      await this.repo.exclusive(async () => {
        for (const path of unfilled) {
          await this.repo.mutate(['worktree', 'remove', '--force', path]).catch(() => undefined);
        }
      });
    }
    const failure = outcomes.find((o) => o.status === 'rejected');
    if (failure) throw failure.reason instanceof UnfilledWorktree ? failure.reason.cause : failure.reason;
    return outcomes.map((o) => (o as PromiseFulfilledResult<AgentWorktree>).value);
  }

  /**
   * Checks out the files of a worktree just registered with `--no-checkout` (its HEAD at `commit`,
   * its index empty, no file yet) as `git worktree add` itself does after registering one: `reset
   * --hard` without submodules, then the post-checkout hook with the null commit as the previous
   * HEAD. Only under the worktree's lock, held since it was registered: a worktree left unfilled
   * would look as if every file had been deleted. A failing hook fails the call with the worktree
   * made, as it fails `worktree add`.
   */
  private async fill(path: string, commit: string): Promise<void> {
    try {
      await this.repo.mutate(['reset', '--hard', '--quiet', '--no-recurse-submodules'], { cwd: path });
    } catch (e) {
      throw new UnfilledWorktree(e);
    }
    await this.repo.mutate(
      ['hook', 'run', '--ignore-missing', 'post-checkout', '--', '0'.repeat(commit.length), commit, '1'],
      {
        cwd: path,
      },
    );
  }

  /**
   * Puts the agent's worktree on the task's branch, brought up to date with the target
   * (taskCheckout.ts says how).
   */
  checkoutTask(
    agentId: string,
    taskId: string,
    targetBranch: string,
    options: CheckoutOptions = {},
  ): Promise<TaskCheckout> {
    return checkoutTask(this, agentId, taskId, targetBranch, options);
  }

  /** The registry's entry for the worktree at `path` (on disk, no git process); for taskCheckout.ts too. */
  async registered(path: string, registry?: readonly RegisteredWorktree[]): Promise<RegisteredWorktree | undefined> {
    const want = await lockPath(path);
    for (const e of registry ?? (await readRegistry(this.repo.root, this.repo.commonDir))) {
      if ((await lockPath(e.path)) === want) return e;
    }
    return undefined;
  }

  /**
   * ensureWorktree on a worktree list just read under the lock. `changed` says the list no longer
   * describes the repository (a worktree was added). For taskCheckout.ts too. With `checkout:
   * false`, a new worktree is registered without its files: `fill` is then the commit to check out,
   * which the caller does under the worktree's lock before anything else uses it.
   */
  async ensureWorktreeIn(
    entries: readonly WorktreeEntry[],
    agentId: string,
    base: string,
    options: { checkout?: boolean } = {},
  ): Promise<{ worktree: AgentWorktree; changed: boolean; fill?: string }> {
    const path = this.pathOf(agentId);
    const entry = await findWorktree(entries, path);
    if (entry && !entry.prunable) {
      // The list has its branch and commit: no need to ask git again.
      await excludeTaskDir(this.repo, path);
      return { worktree: { agentId, path, branch: entry.branch, head: entry.head, created: false }, changed: false };
    }
    if (entry) {
      await this.recreate(entry, entries);
      await excludeTaskDir(this.repo, path);
      return {
        worktree: {
          agentId,
          path,
          branch: await this.repo.currentBranch(path),
          head: await this.head(path),
          created: true,
        },
        changed: true,
      };
    }
    if (!(await isEmptyOrMissing(path))) {
      throw new PipelineError(
        'git',
        `Cannot create the worktree of ${agentId}: ${path} exists and is not a worktree of ${this.repo.root}.`,
        {
          where: path,
          fix: `Move ${path} out of the way (it is not deleted automatically), or set another worktreeRoot.`,
        },
      );
    }
    const start = await this.repo.headOf(base);
    if (!start) {
      throw new PipelineError(
        'git',
        `Cannot create the worktree of ${agentId}: ${base} names no commit in ${this.repo.root}.`,
        {
          fix: 'Make a first commit in the repository.',
        },
      );
    }
    await mkdir(this.root, { recursive: true });
    const checkout = options.checkout ?? true;
    await this.repo.mutate(['worktree', 'add', ...(checkout ? [] : ['--no-checkout']), '--detach', path, start]);
    await excludeTaskDir(this.repo, path);
    // Detached at `start`, as just created; without checkout, its files are for the caller to fill.
    const worktree = { agentId, path, branch: undefined, head: start, created: true };
    return checkout ? { worktree, changed: true } : { worktree, changed: true, fill: start };
  }

  /**
   * Commits everything in the agent's worktree (tracked changes, new and deleted files) except the
   * task directory, for an agent that finished without committing. Returns the new commit, or
   * undefined when there was nothing to commit. Hooks are skipped (`--no-verify`): this commit
   * keeps the agent's work safe; checking it is the stage's check command's job.
   */
  async commitAll(
    agentId: string,
    message: string,
    branch?: string,
    options: CommitAllOptions = {},
  ): Promise<string | undefined> {
    const path = this.pathOf(agentId);
    return this.repo.locked({ worktrees: [path] }, async () => {
      // Excluded first, so new task files are neither reported nor added.
      await excludeTaskDir(this.repo, path);
      // One command for the branch and whether anything at all is uncommitted (usually nothing: the
      // agent committed its own work).
      const status = await worktreeStatus(this.repo, path);
      const gitDir = await this.repo.gitDirOf(path);
      if (!status.branch && options.release && branch && status.files.length === 0 && status.head !== undefined) {
        // Released by an earlier call whose completion the engine did not record (it stopped in
        // between): still at the branch's tip with nothing uncommitted, nothing has changed since.
        if (status.head === (await this.repo.branchHead(branch)) && !(await unfinishedOperation(gitDir)))
          return undefined;
      }
      if (!status.branch) {
        throw new PipelineError(
          'off-branch',
          `Cannot commit in the worktree of ${agentId} (${path}): it is on no branch (detached HEAD), so the commit would belong to no task.`,
          {
            where: path,
            fix: branch
              ? `Put the worktree back on ${branch} (git -C "${path}" switch ${branch}) and cherry-pick what was committed while detached.`
              : 'Give the agent a task first (its branch is checked out then), or commit on a branch by hand.',
          },
        );
      }
      if (branch && status.branch !== branch) {
        throw new PipelineError(
          'off-branch',
          `Cannot commit in the worktree of ${agentId} (${path}): it is on ${status.branch}, not on the task's branch ${branch}.`,
          { where: path, fix: `Put the worktree back on ${branch} (git -C "${path}" switch ${branch}).` },
        );
      }
      const operation = await unfinishedOperation(gitDir);
      if (operation) {
        // Committing now would record conflict markers or half a rebase as the agent's work.
        throw new DirtyWorktreeError(
          path,
          [],
          `Cannot commit the work of ${agentId}: ${path} is in the middle of a ${operation}.`,
          `Finish it (resolve, then git -C "${path}" ${operation} --continue) or abort it (git -C "${path}" ${operation} --abort).`,
        );
      }
      // The stage is done: its branch is let go here, under this worktree's lock, right after the
      // status that found it clean (or the commit that made it so). The next stage's checkout then
      // finds no holder to check and detach, which cost another `git status` on its path. What the
      // agent still writes in its grace after the marker stays in this worktree, as it did when the
      // next checkout detached it: its next launch sets it aside (launch.ts).
      const release = async () => {
        if (options.release && status.branch) await detachClean(this.repo, path, gitDir, status.branch);
      };
      // Nothing staged, changed or untracked (ignored files, the task directory among them, do not
      // count): `add --all` would stage nothing, so there is nothing to commit.
      if (status.files.length === 0) {
        await release();
        return undefined;
      }
      await this.repo.mutate(['add', '--all'], { cwd: path });
      // The exclude file keeps new task files out. If they were ever tracked (someone force-added
      // them), exclusion no longer applies: unstage them rather than commit them.
      const staged = await this.repo.read(['diff', '--cached', '--name-only', '-z', '--', TASK_DIR], { cwd: path });
      if (staged) await this.repo.mutate(['reset', '--quiet', '--', TASK_DIR], { cwd: path });
      const changes = await this.repo.readResult(['diff', '--cached', '--quiet', '--no-ext-diff'], {
        cwd: path,
        okExitCodes: [0, 1],
      });
      if (changes.exitCode === 0) {
        await release();
        return undefined;
      }
      await withMessageFile(message, (file) =>
        this.repo.mutate(['commit', '--quiet', '--no-verify', '-F', file], { cwd: path }),
      );
      const sha = await this.head(path);
      await release();
      return sha;
    });
  }

  /**
   * Keeps what the agent left uncommitted as a commit under `ref` and clears it from the worktree
   * (see setAside.ts); null when there was nothing.
   */
  async setAside(agentId: string, ref: string, message: string): Promise<string | null> {
    const path = this.pathOf(agentId);
    return this.repo.exclusive(async () => {
      if (!existsSync(path)) return null;
      // Excluded first, so the task files stay where they are and out of the commit.
      await excludeTaskDir(this.repo, path);
      return setAsideWork(this.repo, path, ref, message);
    });
  }

  /** Uncommitted paths in the agent's worktree (empty when clean). */
  async uncommitted(agentId: string): Promise<string[]> {
    return uncommittedFiles(this.repo, this.pathOf(agentId));
  }

  /** Detaches the agent's worktree (same commit, same files), releasing its branch for another agent. */
  async detach(agentId: string): Promise<void> {
    const path = this.pathOf(agentId);
    await this.repo.locked({ worktrees: [path] }, async () => {
      if (await this.repo.currentBranch(path)) {
        await switchWorktree(this.repo, path, await this.repo.gitDirOf(path), ['switch', '--quiet', '--detach']);
      }
    });
  }

  /**
   * Removes the agent's worktree. Refuses when it has uncommitted changes, an unfinished merge or
   * rebase, or (detached) commits that no branch contains: a worktree is never deleted with work in it.
   */
  async removeWorktree(agentId: string): Promise<void> {
    const path = this.pathOf(agentId);
    await this.repo.exclusive(async () => {
      const entry = await findWorktree(await listWorktrees(this.repo), path);
      if (!entry) return;
      if (entry.prunable) {
        await this.repo.mutate(['worktree', 'prune']);
        return;
      }
      await assertClean(this.repo, path, `remove the worktree of ${agentId}`, commitOrStash(agentId, path));
      if (!entry.branch && entry.head) {
        const holders = await this.repo.read([
          'for-each-ref',
          '--count=1',
          '--contains',
          entry.head,
          '--format=%(refname)',
          'refs/heads',
          'refs/tags',
        ]);
        if (!holders.trim()) {
          throw new PipelineError(
            'git',
            `Cannot remove the worktree of ${agentId}: its commit ${entry.head.slice(0, 12)} is on no branch and would be lost.`,
            {
              where: path,
              fix: `Keep it on a branch first: git -C "${path}" branch <name>`,
            },
          );
        }
      }
      await this.repo.mutate(['worktree', 'remove', path]);
    });
  }

  /** The agent worktrees registered in the repository. */
  async list(): Promise<Array<WorktreeEntry & { agentId: string }>> {
    const out: Array<WorktreeEntry & { agentId: string }> = [];
    for (const e of await listWorktrees(this.repo)) {
      const agentId = e.main ? undefined : await this.agentOf(e.path);
      if (agentId) out.push({ ...e, agentId });
    }
    return out;
  }

  /** Re-creates a registered worktree whose directory has gone, on its branch or at its commit. */
  async recreate(entry: WorktreeEntry, entries: readonly WorktreeEntry[]): Promise<void> {
    const branchFree =
      entry.branch !== undefined && !entries.some((e) => e !== entry && !e.prunable && e.branch === entry.branch);
    await mkdir(dirname(entry.path), { recursive: true });
    // --force: git refuses to add at a path that is still registered, even with its directory gone.
    if (branchFree && entry.branch) await this.repo.mutate(['worktree', 'add', '--force', entry.path, entry.branch]);
    else await this.repo.mutate(['worktree', 'add', '--force', '--detach', entry.path, entry.head]);
  }

  private async rootPath(): Promise<string> {
    if (this.canonicalRoot) return this.canonicalRoot;
    try {
      this.canonicalRoot = await realpath(this.root);
      return this.canonicalRoot;
    } catch {
      return resolve(this.root);
    }
  }

  private async head(path: string): Promise<string> {
    return (await this.repo.headOf('HEAD', path)) ?? '';
  }
}
