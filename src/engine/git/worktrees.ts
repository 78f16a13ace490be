import { existsSync } from 'node:fs';
import { access, appendFile, mkdir, readdir, readFile, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { assertName, isName, taskBranch } from '../model/ids';
import { createBranchAt, refsIfContains, requireBranch } from './branches';
import { DirtyWorktreeError, GitLockError, listFiles, MergeConflictError } from './gitErrors';
import type { GitRepo, LockScope } from './gitRepo';
import { withMessageFile } from './messageFile';
import { mergeTask } from './merge';
import { assertBranchName } from './refNames';
import { setAsideWork } from './setAside';
import { canonicalPath, findWorktree, listWorktrees, type WorktreeEntry } from './worktreeList';
import {
  branchOfGitDir,
  holdersOf,
  lockPath,
  readRegistry,
  worktreeAt,
  type RegisteredWorktree,
} from './worktreeRegistry';
import { uncommittedFiles, unfinishedOperation, worktreeStatus } from './worktreeState';

/** The directory, inside each agent worktree, that holds the task files; never committed. */
export const TASK_DIR = '.pipeline-task';

export interface AgentWorktree {
  readonly agentId: string;
  readonly path: string;
  /** The branch checked out, undefined when detached (no task). */
  readonly branch: string | undefined;
  readonly head: string;
  /** Created by this call (or re-created because its directory had gone). */
  readonly created: boolean;
}

/** How the task branch was brought up to date; 'conflict' only with `onConflict: 'checkout'`. */
export type BranchUpdate = 'up-to-date' | 'fast-forward' | 'merged' | 'conflict';

export interface CheckoutOptions {
  /**
   * When the target does not merge cleanly into the task branch: 'throw' (default) throws
   * MergeConflictError and changes nothing; 'checkout' switches the worktree to the task branch as
   * it is (not merged, no conflict markers) and returns the files, so an agent can do the merge.
   */
  readonly onConflict?: 'throw' | 'checkout';
  /**
   * Called once the task branch is where this checkout leaves it (created, brought up to date, or
   * left as it is on a conflict), while the worktree is being switched to it: a caller may start
   * reading the branch then (what earlier stages left) instead of after the switch.
   */
  readonly onBranchReady?: (head: string) => void;
}

export interface TaskCheckout extends AgentWorktree {
  readonly branch: string;
  /** The task branch was created from the target by this call. */
  readonly createdBranch: boolean;
  /** How the task branch was brought up to date with the target. */
  readonly update: BranchUpdate;
  /** Agent worktrees that had the task branch checked out and were detached to hand it over. */
  readonly releasedFrom: readonly string[];
  /** Files that conflict between the task branch and the target (update 'conflict'). */
  readonly conflicts: readonly string[];
}

/** The lock name of the exclude file (repoLock.ts, level `file`). */
const EXCLUDE_LOCK = 'info/exclude';
/** Plans whose locks turned out too few (the registry changed meanwhile) before taking the whole repository. */
const MAX_PLANS = 3;

/** What an operation found in the registry before locking, and the locks that makes it need. */
interface Plan<D> {
  readonly scope: LockScope;
  readonly data: D;
}

/** Every lock `needed` asks for is among those `held` asks for (paths compared as lock names). */
async function covers(held: LockScope, needed: LockScope): Promise<boolean> {
  if (held.exclusive) return true;
  if (needed.exclusive) return false;
  const heldBranches = new Set(held.branches ?? []);
  if (!(needed.branches ?? []).every((b) => heldBranches.has(b))) return false;
  const heldPaths = new Set(await Promise.all((held.worktrees ?? []).map(lockPath)));
  for (const w of needed.worktrees ?? []) if (!heldPaths.has(await lockPath(w))) return false;
  return true;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * A git lock file another process holds, found before a command that would take it only after it
 * has changed files: `git switch` writes the index and the files first and HEAD last, so a held
 * `HEAD.lock` would leave a worktree switched but its HEAD not. Thrown as git would say it, so the
 * caller's retry (and the stale-lock check) treat it like any other held lock.
 */
async function assertNotLocked(lock: string, args: readonly string[], cwd: string): Promise<void> {
  if (!(await exists(lock))) return;
  throw new GitLockError(args, cwd, -1, `fatal: Unable to create '${lock}': File exists.`, '', lock);
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
    const path = this.pathOf(agentId);
    return this.planned(
      async () => {
        const mine = await this.registered(path);
        return { scope: { exclusive: !mine?.present, worktrees: [path] }, data: undefined };
      },
      async () => (await this.ensureWorktreeIn(await listWorktrees(this.repo), agentId, base)).worktree,
    );
  }

  /**
   * Runs `body` under the locks `plan` asks for, planned again once they are held (see the class
   * comment): `body` gets the plan made under the locks.
   */
  private async planned<D, T>(plan: () => Promise<Plan<D>>, body: (data: D) => Promise<T>): Promise<T> {
    for (let round = 1; ; round++) {
      const first = round > MAX_PLANS ? undefined : await plan();
      const scope = first?.scope ?? { exclusive: true };
      const result = await this.repo.locked(scope, async () => {
        const now = await plan();
        if (!(await covers(scope, now.scope))) return undefined;
        return { value: await body(now.data) };
      });
      if (result) return result.value;
    }
  }

  /** The registry's entry for the worktree at `path` (on disk, no git process). */
  private async registered(
    path: string,
    registry?: readonly RegisteredWorktree[],
  ): Promise<RegisteredWorktree | undefined> {
    const want = await lockPath(path);
    for (const e of registry ?? (await readRegistry(this.repo.root, this.repo.commonDir))) {
      if ((await lockPath(e.path)) === want) return e;
    }
    return undefined;
  }

  /**
   * ensureWorktree on a worktree list just read under the lock. `changed` says the list no longer
   * describes the repository (a worktree was added).
   */
  private async ensureWorktreeIn(
    entries: readonly WorktreeEntry[],
    agentId: string,
    base: string,
  ): Promise<{ worktree: AgentWorktree; changed: boolean }> {
    const path = this.pathOf(agentId);
    const entry = await findWorktree(entries, path);
    if (entry && !entry.prunable) {
      // The list has its branch and commit: no need to ask git again.
      await this.ensureTaskDirExcluded(path);
      return { worktree: { agentId, path, branch: entry.branch, head: entry.head, created: false }, changed: false };
    }
    if (entry) {
      await this.recreate(entry, entries);
      await this.ensureTaskDirExcluded(path);
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
    await this.repo.mutate(['worktree', 'add', '--detach', path, start]);
    await this.ensureTaskDirExcluded(path);
    // Detached at `start`, as just created.
    return { worktree: { agentId, path, branch: undefined, head: start, created: true }, changed: true };
  }

  /**
   * Puts the agent's worktree on the task's branch (`pipeline/<taskId>`, created from the target
   * branch when missing), brought up to date with the target. Refuses when the worktree has
   * uncommitted changes or an unfinished merge. When the target cannot be merged cleanly into the
   * task branch, throws MergeConflictError with the files (the merge is computed with merge-tree
   * first: no half-merged tree is ever left behind, and neither the branch nor this worktree moves;
   * only a previous agent's clean worktree may have been detached from the branch), or with
   * `onConflict: 'checkout'` puts the worktree on the unmerged branch and returns the files.
   */
  async checkoutTask(
    agentId: string,
    taskId: string,
    targetBranch: string,
    options: CheckoutOptions = {},
  ): Promise<TaskCheckout> {
    const branch = taskBranch(taskId);
    assertBranchName(targetBranch, 'target branch');
    const path = this.pathOf(agentId);
    const self = await lockPath(path);
    // The task branch is locked throughout, so no other operation of ours checks it out, creates it
    // or moves it meanwhile. Worktrees are locked only while they change (this one, then each that
    // holds the branch), so the previous agent's worktree is held for two commands, not the whole
    // checkout: that agent may be starting its own next task.
    const planCheckout = async () => {
      const mine = await worktreeAt(path, this.repo.commonDir);
      // Adding or re-creating the agent's worktree changes the registry.
      return { scope: { exclusive: !mine, branches: [branch] }, data: undefined };
    };
    return this.planned(planCheckout, async () => {
      // Usually one command: both tips, and the branch already contains the target (no update due).
      const fast = await refsIfContains(this.repo, branch, targetBranch);
      const targetHead = fast?.target ?? (await requireBranch(this.repo, targetBranch, 'target branch'));
      let mine = await worktreeAt(path, this.repo.commonDir);
      let created = false;
      if (!mine) {
        // Under the repository's exclusive lock (the plan asked for it).
        created = (await this.ensureWorktreeIn(await listWorktrees(this.repo), agentId, targetHead)).worktree.created;
        mine = await this.registered(path);
      } else {
        await this.ensureTaskDirExcluded(path);
      }
      if (!mine) {
        throw new PipelineError(
          'git',
          `The worktree of ${agentId} at ${path} is not registered in ${this.repo.root}.`,
          {
            where: path,
            fix: 'Run the pipeline again: it re-creates the worktrees of its agents at start.',
          },
        );
      }
      const gitDir = mine.gitDir;
      const what = `switch the worktree of ${agentId} to ${branch}`;
      let head = fast?.branch ?? (await this.repo.branchHead(branch));
      // Release first: the update below then moves a branch that no worktree has checked out.
      const holders: RegisteredWorktree[] = [];
      for (const e of await holdersOf(this.repo.root, this.repo.commonDir, branch)) {
        if ((await lockPath(e.path)) !== self) holders.push(e);
      }
      // This worktree is checked (refused when dirty, before the branch moves) while the holders are
      // released: different worktrees under their own locks, so the two run side by side. Nothing
      // else of ours changes this worktree until the switch below (no agent runs in it while it is
      // being given a task); a refusal here may leave a holder detached, which changes no file.
      const [checked, released] = await Promise.allSettled([
        this.repo.locked({ worktrees: [path] }, () => this.assertClean(path, what, agentId, gitDir)),
        this.releaseBranchFrom(branch, holders),
      ]);
      if (checked.status === 'rejected') throw checked.reason;
      if (released.status === 'rejected') throw released.reason;
      const releasedFrom = released.value;
      // Created only once the worktree is known to be clean: a refused checkout leaves no branch.
      let createdBranch = false;
      if (!head) {
        const made = await createBranchAt(this.repo, branch, targetHead, targetBranch);
        head = made.head;
        createdBranch = made.created;
      }
      // merge-tree computes the merge before anything moves: a conflict throws with the files and
      // leaves no half-merged tree; a clean merge becomes a commit on the branch (mergeTask). A
      // branch that contains the target (or was just created from it) is up to date as it is.
      let update: BranchUpdate = 'up-to-date';
      let conflicts: readonly string[] = [];
      if (!fast && !createdBranch) {
        try {
          const merged = await mergeTask(this.repo, targetBranch, branch, `Merge ${targetBranch} into ${branch}`, {
            conflictFix: `Resolve it on ${branch}: merge ${targetBranch} into it in a worktree, fix the files and commit, then hand the task on again.`,
          });
          update = merged.kind === 'merge' ? 'merged' : merged.kind;
          head = merged.sha;
        } catch (e) {
          if (!(e instanceof MergeConflictError) || options.onConflict !== 'checkout') throw e;
          update = 'conflict';
          conflicts = e.files;
        }
      }
      options.onBranchReady?.(head);
      await this.repo.locked({ worktrees: [path] }, async () => {
        // Read again under the lock: another checkout may have detached this worktree meanwhile.
        if ((await branchOfGitDir(gitDir)) === branch) return;
        const operation = await unfinishedOperation(gitDir);
        if (operation) await this.assertClean(path, what, agentId, gitDir);
        await this.switchTo(path, gitDir, ['switch', '--quiet', branch]);
      });
      // HEAD is now the branch's tip, which this call read or made (a conflict moves nothing).
      return { agentId, path, branch, head, created, createdBranch, update, releasedFrom, conflicts };
    });
  }

  /**
   * `git switch` in a worktree whose lock the caller holds, tried again while another process holds
   * its index or HEAD lock (see assertNotLocked).
   */
  private async switchTo(path: string, gitDir: string, args: readonly string[]): Promise<void> {
    await this.repo.retryingLocks(async () => {
      await assertNotLocked(join(gitDir, 'HEAD.lock'), args, path);
      await this.repo.mutate(args, { cwd: path, lockRetries: false });
    });
  }

  /**
   * Commits everything in the agent's worktree (tracked changes, new and deleted files) except the
   * task directory, for an agent that finished without committing. Returns the new commit, or
   * undefined when there was nothing to commit. Hooks are skipped (`--no-verify`): this commit
   * keeps the agent's work safe; checking it is the stage's check command's job.
   */
  async commitAll(agentId: string, message: string, branch?: string): Promise<string | undefined> {
    const path = this.pathOf(agentId);
    return this.repo.locked({ worktrees: [path] }, async () => {
      // Excluded first, so new task files are neither reported nor added.
      await this.ensureTaskDirExcluded(path);
      // One command for the branch and whether anything at all is uncommitted (usually nothing: the
      // agent committed its own work).
      const status = await worktreeStatus(this.repo, path);
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
      const operation = await unfinishedOperation(await this.repo.gitDirOf(path));
      if (operation) {
        // Committing now would record conflict markers or half a rebase as the agent's work.
        throw new DirtyWorktreeError(
          path,
          [],
          `Cannot commit the work of ${agentId}: ${path} is in the middle of a ${operation}.`,
          `Finish it (resolve, then git -C "${path}" ${operation} --continue) or abort it (git -C "${path}" ${operation} --abort).`,
        );
      }
      // Nothing staged, changed or untracked (ignored files, the task directory among them, do not
      // count): `add --all` would stage nothing, so there is nothing to commit.
      if (status.files.length === 0) return undefined;
      await this.repo.mutate(['add', '--all'], { cwd: path });
      // The exclude file keeps new task files out. If they were ever tracked (someone force-added
      // them), exclusion no longer applies: unstage them rather than commit them.
      const staged = await this.repo.read(['diff', '--cached', '--name-only', '-z', '--', TASK_DIR], { cwd: path });
      if (staged) await this.repo.mutate(['reset', '--quiet', '--', TASK_DIR], { cwd: path });
      const changes = await this.repo.readResult(['diff', '--cached', '--quiet', '--no-ext-diff'], {
        cwd: path,
        okExitCodes: [0, 1],
      });
      if (changes.exitCode === 0) return undefined;
      await withMessageFile(message, (file) =>
        this.repo.mutate(['commit', '--quiet', '--no-verify', '-F', file], { cwd: path }),
      );
      return this.head(path);
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
      await this.ensureTaskDirExcluded(path);
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
        await this.switchTo(path, await this.repo.gitDirOf(path), ['switch', '--quiet', '--detach']);
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
      await this.assertClean(path, `remove the worktree of ${agentId}`, agentId);
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

  private async assertClean(path: string, what: string, agentId: string, gitDir?: string): Promise<void> {
    const operation = await unfinishedOperation(gitDir ?? (await this.repo.gitDirOf(path)));
    if (operation) {
      throw new DirtyWorktreeError(
        path,
        [],
        `Cannot ${what}: ${path} is in the middle of a ${operation}.`,
        `Finish or abort it (git -C "${path}" ${operation} --abort), then try again.`,
      );
    }
    const files = await uncommittedFiles(this.repo, path);
    if (files.length > 0) {
      throw new DirtyWorktreeError(
        path,
        files,
        `Cannot ${what}: ${path} has uncommitted changes (${listFiles(files)}).`,
        `Commit them first (the engine does this with commitAll when ${agentId} finishes), or stash them: git -C "${path}" stash`,
      );
    }
  }

  /**
   * A branch can be checked out in one worktree only. When another agent's worktree still holds the
   * task branch (the previous stage's agent), it is detached (same commit, same files) so this
   * agent can take the branch over. A dirty holder, or the user's own worktree, is an error. The
   * caller holds the branch's lock, so no other worktree takes the branch meanwhile.
   */
  private async releaseBranchFrom(branch: string, holders: readonly RegisteredWorktree[]): Promise<string[]> {
    if (holders.length === 0) return [];
    return this.repo.locked({ worktrees: holders.map((h) => h.path) }, async () => {
      const released: string[] = [];
      for (const e of holders) {
        // Read again under its lock: it may have switched to its own next task meanwhile.
        if ((await branchOfGitDir(e.gitDir)) !== branch) continue;
        const agent = e.main ? undefined : await this.agentOf(e.path);
        if (!agent) {
          throw new PipelineError('git', `${branch} is checked out in ${e.path}, which is not an agent worktree.`, {
            where: e.path,
            fix: `Check out another branch there (git -C "${e.path}" switch <branch>), then try again.`,
          });
        }
        await this.assertClean(e.path, `hand ${branch} over from ${agent}`, agent, e.gitDir);
        await this.switchTo(e.path, e.gitDir, ['switch', '--quiet', '--detach']);
        released.push(agent);
      }
      return released;
    });
  }

  /**
   * Keeps the task directory out of commits through git's exclude file, not the repository's
   * .gitignore (which is the user's and is committed). git 2.39 reads `info/exclude` from the common
   * git dir only, not from a linked worktree's own git dir, so the pattern goes where
   * `git rev-parse --git-path info/exclude` says git will read it (which covers every worktree;
   * asked once per repository). The file itself is read every time: someone may have edited it.
   */
  private async ensureTaskDirExcluded(path: string): Promise<void> {
    const file = await this.repo.excludeFile(path);
    const pattern = `/${TASK_DIR}/`;
    // Read, then append: two operations for different agents must not both append.
    await this.repo.locked({ files: [EXCLUDE_LOCK] }, async () => {
      let content = '';
      try {
        content = await readFile(file, 'utf8');
      } catch {
        await mkdir(dirname(file), { recursive: true });
      }
      if (content.split(/\r?\n/).includes(pattern)) return;
      await appendFile(
        file,
        `${content && !content.endsWith('\n') ? '\n' : ''}# Agent Pipeline task files (never committed)\n${pattern}\n`,
      );
    });
  }
}
