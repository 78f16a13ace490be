import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { assertName, isName, taskBranch } from '../model/ids';
import { createBranchAt, refsIfContains, requireBranch } from './branches';
import { DirtyWorktreeError, listFiles, MergeConflictError } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { withMessageFile } from './messageFile';
import { mergeTask } from './merge';
import { assertBranchName } from './refNames';
import { setAsideWork } from './setAside';
import { canonicalPath, findWorktree, listWorktrees, type WorktreeEntry } from './worktreeList';
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

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

/**
 * A worktree per agent at `<worktreeRoot>/<agentId>`, a branch per task (`pipeline/<TASK-ID>`).
 * Every operation holds the repository's lock for its whole sequence of checks and commands, so
 * concurrent calls for different agents queue instead of racing on git's locks.
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
    return this.repo.exclusive(
      async () => (await this.ensureWorktreeIn(await listWorktrees(this.repo), agentId, base)).worktree,
    );
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
    return this.repo.exclusive(async () => {
      // Usually one command: both tips, and the branch already contains the target (no update due).
      const fast = await refsIfContains(this.repo, branch, targetBranch);
      const targetHead = fast?.target ?? (await requireBranch(this.repo, targetBranch, 'target branch'));
      let entries = await listWorktrees(this.repo);
      const ensured = await this.ensureWorktreeIn(entries, agentId, targetHead);
      const wt = ensured.worktree;
      if (ensured.changed) entries = await listWorktrees(this.repo);
      await this.assertClean(path, `switch the worktree of ${agentId} to ${branch}`, agentId);
      let head = fast?.branch ?? (await this.repo.branchHead(branch));
      let createdBranch = false;
      if (!head) {
        const created = await createBranchAt(this.repo, branch, targetHead, targetBranch);
        head = created.head;
        createdBranch = created.created;
      }
      // Release first: the update below fast-forwards whichever worktree holds the branch.
      const releasedFrom = await this.releaseBranchElsewhere(branch, path, entries);
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
      // The list was read under the lock, and only this call has moved anything since (the branch,
      // other worktrees): it still says what this worktree has checked out.
      if (wt.branch !== branch) {
        await this.repo.mutate(['switch', '--quiet', branch], { cwd: path });
      }
      // HEAD is now the branch's tip, which this call read or made (a conflict moves nothing).
      return { ...wt, branch, head, createdBranch, update, releasedFrom, conflicts };
    });
  }

  /**
   * Commits everything in the agent's worktree (tracked changes, new and deleted files) except the
   * task directory, for an agent that finished without committing. Returns the new commit, or
   * undefined when there was nothing to commit. Hooks are skipped (`--no-verify`): this commit
   * keeps the agent's work safe; checking it is the stage's check command's job.
   */
  async commitAll(agentId: string, message: string): Promise<string | undefined> {
    const path = this.pathOf(agentId);
    return this.repo.exclusive(async () => {
      // Excluded first, so new task files are neither reported nor added.
      await this.ensureTaskDirExcluded(path);
      // One command for the branch and whether anything at all is uncommitted (usually nothing: the
      // agent committed its own work).
      const status = await worktreeStatus(this.repo, path);
      if (!status.branch) {
        throw new PipelineError(
          'git',
          `Cannot commit in the worktree of ${agentId} (${path}): it is on no branch, so the commit would belong to no task.`,
          {
            where: path,
            fix: 'Give the agent a task first (its branch is checked out then), or commit on a branch by hand.',
          },
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
    await this.repo.exclusive(async () => {
      if (await this.repo.currentBranch(path)) await this.repo.mutate(['switch', '--quiet', '--detach'], { cwd: path });
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

  private async assertClean(path: string, what: string, agentId: string): Promise<void> {
    const operation = await unfinishedOperation(await this.repo.gitDirOf(path));
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
   * agent can take the branch over. A dirty holder, or the user's own worktree, is an error.
   */
  private async releaseBranchElsewhere(
    branch: string,
    path: string,
    entries: readonly WorktreeEntry[],
  ): Promise<string[]> {
    const released: string[] = [];
    const self = await canonicalPath(path);
    for (const e of entries) {
      if (e.branch !== branch || e.prunable || (await canonicalPath(e.path)) === self) continue;
      const agent = e.main ? undefined : await this.agentOf(e.path);
      if (!agent) {
        throw new PipelineError('git', `${branch} is checked out in ${e.path}, which is not an agent worktree.`, {
          where: e.path,
          fix: `Check out another branch there (git -C "${e.path}" switch <branch>), then try again.`,
        });
      }
      await this.assertClean(e.path, `hand ${branch} over from ${agent}`, agent);
      await this.repo.mutate(['switch', '--quiet', '--detach'], { cwd: e.path });
      released.push(agent);
    }
    return released;
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
  }
}
