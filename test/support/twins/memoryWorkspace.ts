import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { PriorWork } from '../../../src/engine/agents/taskFile';
import { TASK_DIR } from '../../../src/engine/agents/taskFile';
import { PipelineError } from '../../../src/engine/errors';
import { DirtyWorktreeError, GitLockError, listFiles } from '../../../src/engine/git/gitErrors';
import { assertName, taskBranch } from '../../../src/engine/model/ids';
import type {
  BranchCleanup,
  CommitAllOptions,
  MergeOutcome,
  PreparedWorktree,
  WorkspacePort,
} from '../../../src/engine/ports/workspacePort';

/**
 * The WorkspacePort's in-memory twin: a small git, enough for the monitor's policy.
 *
 * What it models:
 * - commits as whole snapshots of text files (path → content) with their parents, a message and a
 *   40-hex id; branches as names pointing at commits; ancestry and a merge base (the newest common
 *   ancestor).
 * - one worktree per agent, on a task branch or detached, in a real directory under `root`
 *   (worktreePath), so the monitor's task files and markers, agents' files and stage checks all
 *   work on disk. The working copy is those files; the commits are in memory. The task directory
 *   (.pipeline-task/) is never committed, as git's exclude file keeps it out.
 * - prepare as Worktrees.checkoutTask does: the task branch created from the base when missing,
 *   else brought up to date with it (fast-forward, or a merge commit "Merge <base> into <branch>");
 *   on a conflict the branch is left as it was, the worktree switched to it and the files
 *   reported. A dirty worktree is refused (DirtyWorktreeError), and another agent's worktree that
 *   holds the branch is detached first.
 * - merge as mergeTask does: up to date when the base already contains the branch, a fast-forward
 *   when it can, else a three-way merge commit; a conflict changes nothing and names the files.
 * - deleteMergedBranch as git/mergedBranches.ts does: only a branch whose tip `into` contains, after
 *   detaching any agent worktree that has it checked out.
 * - every port call is serialised (the real adapter holds the repository's lock) and logged in
 *   `calls`, so a test can say that shadow mode asked nothing of git.
 * - a git lock held by another process (`holdLock`): the calls that need it fail with GitLockError
 *   (code `git-lock`) and change nothing, as the real adapter's do once its own retries run out.
 *
 * What it does not model: line-level merging (a path changed differently on both sides conflicts,
 * even where git would merge different lines of one file cleanly), renames (a rename is a delete
 * and an add), binary files, file modes and symlinks, .gitignore (only the task directory is left
 * out), hooks, lock files on disk (a held lock is only `holdLock`'s flag; nothing removes a stale
 * one), unfinished merges or rebases, and a target branch checked out in a worktree. `repair` only
 * creates missing worktrees and re-creates ones whose directory has gone.
 */

/** A commit's files: path (with `/`) → content. */
export type Snapshot = ReadonlyMap<string, string>;

export interface MemoryCommit {
  readonly id: string;
  readonly parents: readonly string[];
  readonly message: string;
  readonly files: Snapshot;
  /** Creation order: a commit's ancestors all have lower numbers. */
  readonly seq: number;
}

interface Worktree {
  readonly agentId: string;
  readonly path: string;
  branch: string | undefined;
  head: string;
}

export interface MemoryWorkspaceOptions {
  /** Files of the first commit (default: a README). */
  files?: Record<string, string>;
  /** The branch of the first commit (default `main`). */
  branch?: string;
  /** Directory for the agents' worktrees (default: a new temporary directory). */
  root?: string;
}

/** The port calls that take a git lock, so another process holding it makes them fail. */
export type LockingCall = 'repair' | 'prepare' | 'commitAll' | 'setAside' | 'ensureBranch' | 'merge';

/** A lock held by `holdLock`: how many calls it failed so far, and its release. */
export interface HeldLock {
  readonly lockFile: string;
  /** Calls that failed on this lock so far. */
  readonly failed: number;
  /** The other process lets go: the next call succeeds. */
  release(): void;
}

interface Hold {
  readonly call: LockingCall;
  readonly lockFile: string;
  /** Calls still to fail; Infinity until released. */
  remaining: number;
  failed: number;
}

export class MemoryWorkspace implements WorkspacePort {
  /** The port calls made so far, one line each (`prepare implementer TASK-001 main`). */
  readonly calls: string[] = [];
  private holds: Hold[] = [];
  private readonly commits = new Map<string, MemoryCommit>();
  private readonly branches = new Map<string, string>();
  /** Refs that are not branches (work set aside), by full name. */
  private readonly otherRefs = new Map<string, string>();
  private readonly trees = new Map<string, Worktree>();
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** Where the agents' worktrees are, one directory each. */
    readonly root: string,
    /** The branch the main working tree has checked out; new worktrees start at its tip. */
    readonly mainBranch: string,
  ) {}

  static async create(o: MemoryWorkspaceOptions = {}): Promise<MemoryWorkspace> {
    const root = o.root ?? (await mkdtemp(join(tmpdir(), 'pipeline-twin-ws-')));
    await mkdir(root, { recursive: true });
    const ws = new MemoryWorkspace(root, o.branch ?? 'main');
    const first = ws.newCommit([], 'Initial commit', new Map(Object.entries(o.files ?? { 'README.md': '# Twin\n' })));
    ws.branches.set(ws.mainBranch, first.id);
    return ws;
  }

  /** Removes the worktrees' directory. */
  async dispose(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------------------------------
  // The port.

  worktreePath(agentId: string): string {
    return join(this.root, assertName(agentId, 'agent id'));
  }

  repair(agentIds: readonly string[]): Promise<string[]> {
    return this.exclusive(`repair ${agentIds.join(',')}`, async () => {
      const lines: string[] = [];
      for (const wt of this.trees.values()) {
        if (await exists(wt.path)) continue;
        await this.materialise(wt);
        lines.push(`re-created the missing worktree of ${wt.agentId} at ${wt.path} (${wt.branch ?? wt.head})`);
      }
      for (const id of agentIds) {
        if (this.trees.has(id)) continue;
        await this.createWorktree(id);
        lines.push(`created the worktree of ${id}`);
      }
      return lines;
    });
  }

  prepare(agentId: string, taskId: string, base: string): Promise<PreparedWorktree> {
    return this.exclusive(`prepare ${agentId} ${taskId} ${base}`, async () => {
      const branch = taskBranch(taskId);
      const baseHead = this.requireBranch(base, 'target branch');
      const wt = this.trees.get(agentId) ?? (await this.createWorktree(agentId, baseHead));
      if (!(await exists(wt.path))) await this.materialise(wt);
      await this.assertClean(wt, `switch the worktree of ${agentId} to ${branch}`);
      let conflicts: string[] = [];
      const head = this.branches.get(branch);
      if (head === undefined) this.branches.set(branch, baseHead);
      else if (!this.isAncestor(baseHead, head)) {
        if (this.isAncestor(head, baseHead)) this.branches.set(branch, baseHead);
        else {
          const m = this.threeWay(head, baseHead);
          if (m.conflicts.length) conflicts = m.conflicts;
          else this.branches.set(branch, this.newCommit([head, baseHead], `Merge ${base} into ${branch}`, m.files).id);
        }
      }
      for (const other of this.trees.values()) {
        if (other === wt || other.branch !== branch) continue;
        await this.assertClean(other, `hand ${branch} over from ${other.agentId}`);
        other.branch = undefined;
      }
      wt.branch = branch;
      wt.head = this.branches.get(branch)!;
      await this.materialise(wt);
      return { worktree: wt.path, conflicts };
    });
  }

  commitAll(agentId: string, message: string, branch?: string, options: CommitAllOptions = {}): Promise<boolean> {
    return this.exclusive(`commitAll ${agentId}`, async () => {
      const wt = this.trees.get(agentId);
      // Released by an earlier call (a crash before its completion was recorded): nothing changed since.
      if (wt && !wt.branch && options.release && branch && this.branches.get(branch) === wt.head) {
        if (sameFiles(await readWorkingCopy(wt.path), this.commit(wt.head).files)) return false;
      }
      if (!wt || !wt.branch)
        throw new PipelineError(
          'off-branch',
          `Cannot commit in the worktree of ${agentId}: it is on no branch (detached HEAD), so the commit would belong to no task.`,
          { where: this.worktreePath(agentId), fix: 'Give the agent a task first.' },
        );
      if (branch && wt.branch !== branch)
        throw new PipelineError(
          'off-branch',
          `Cannot commit in the worktree of ${agentId}: it is on ${wt.branch}, not on the task's branch ${branch}.`,
          { where: this.worktreePath(agentId), fix: `Put the worktree back on ${branch}.` },
        );
      const files = await readWorkingCopy(wt.path);
      const committed = !sameFiles(files, this.commit(wt.head).files);
      if (committed) {
        const c = this.newCommit([wt.head], message, files);
        wt.head = c.id;
        this.branches.set(wt.branch, c.id);
      }
      // Detached at the same commit, as the real worktree's HEAD is.
      if (options.release) wt.branch = undefined;
      return committed;
    });
  }

  setAside(agentId: string, ref: string, message: string): Promise<string | null> {
    return this.exclusive(`setAside ${agentId} ${ref}`, async () => {
      const wt = this.trees.get(agentId);
      if (!wt) return null;
      const files = await readWorkingCopy(wt.path);
      if (sameFiles(files, this.commit(wt.head).files)) return null;
      let written = ref;
      for (let n = 2; this.otherRefs.has(written); n++) written = `${ref}-${n}`;
      this.otherRefs.set(written, this.newCommit([wt.head], message, files).id);
      await this.materialise(wt);
      return written;
    });
  }

  priorWork(taskId: string, base: string): Promise<PriorWork> {
    return this.exclusive(`priorWork ${taskId} ${base}`, () => {
      const head = this.requireBranch(taskBranch(taskId), 'task branch');
      const baseHead = this.requireBranch(base, 'target branch');
      const known = this.ancestors(baseHead);
      const commits = [...this.ancestors(head)]
        .filter((id) => !known.has(id))
        .map((id) => this.commit(id))
        .sort((a, b) => b.seq - a.seq)
        .map((c) => `${c.id.slice(0, 10)} ${subject(c.message)}`);
      const from = this.commit(this.mergeBase(head, baseHead)).files;
      const to = this.commit(head).files;
      const files = [...new Set([...from.keys(), ...to.keys()])].filter((p) => from.get(p) !== to.get(p)).sort();
      return Promise.resolve({ commits, files, notes: [] });
    });
  }

  ensureBranch(name: string, from: string): Promise<void> {
    return this.exclusive(`ensureBranch ${name} ${from}`, () => {
      if (!this.branches.has(name)) this.branches.set(name, this.requireBranch(from, 'branch to start from'));
      return Promise.resolve();
    });
  }

  merge(taskId: string, into: string, message: string): Promise<MergeOutcome> {
    return this.exclusive(`merge ${taskId} ${into}`, (): Promise<MergeOutcome> => {
      const theirs = this.requireBranch(taskBranch(taskId), 'branch to merge');
      const ours = this.requireBranch(into, 'target branch');
      if (this.isAncestor(theirs, ours)) return Promise.resolve({ merged: true, commit: ours });
      if (this.isAncestor(ours, theirs)) {
        this.branches.set(into, theirs);
        return Promise.resolve({ merged: true, commit: theirs });
      }
      const m = this.threeWay(ours, theirs);
      if (m.conflicts.length) return Promise.resolve({ merged: false, conflicts: m.conflicts });
      const c = this.newCommit([ours, theirs], message, m.files);
      this.branches.set(into, c.id);
      return Promise.resolve({ merged: true, commit: c.id });
    });
  }

  deleteMergedBranch(taskId: string, into: string): Promise<BranchCleanup> {
    return this.exclusive(`deleteMergedBranch ${taskId} ${into}`, (): Promise<BranchCleanup> => {
      const branch = taskBranch(taskId);
      const tip = this.branches.get(branch);
      if (tip === undefined)
        return Promise.resolve({ deleted: false, reason: 'missing', detail: `${branch} does not exist` });
      if (!this.isAncestor(tip, this.requireBranch(into, 'target branch')))
        return Promise.resolve({
          deleted: false,
          reason: 'unmerged',
          detail: `${branch} has commits that ${into} lacks; it was kept`,
        });
      for (const wt of this.trees.values()) if (wt.branch === branch) wt.branch = undefined;
      this.branches.delete(branch);
      return Promise.resolve({ deleted: true });
    });
  }

  // ------------------------------------------------------------------------------------------
  // Outside the port: what a test (or a person at the repository) does and looks at.

  /** The commit a branch points at, or undefined when there is no such branch. */
  head(branch: string): string | undefined {
    return this.branches.get(branch);
  }

  /** Every branch and its commit, sorted: what shadow mode must leave as it was. */
  refs(): Record<string, string> {
    return Object.fromEntries([...this.branches.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Detaches an agent's worktree (same commit, no branch), as `git checkout --detach` there would. */
  detach(agentId: string): void {
    const wt = this.trees.get(agentId);
    if (!wt) throw new Error(`no worktree of ${agentId} in the twin workspace`);
    wt.branch = undefined;
  }

  /** The agents' worktrees: branch (undefined when detached) and commit. */
  worktrees(): Array<{ agentId: string; branch: string | undefined; head: string }> {
    return [...this.trees.values()].map((w) => ({ agentId: w.agentId, branch: w.branch, head: w.head }));
  }

  /** A commit by id, or the tip of a branch. */
  commit(ref: string): MemoryCommit {
    const c = this.commits.get(this.branches.get(ref) ?? this.otherRefs.get(ref) ?? ref);
    if (!c) throw new Error(`no commit or branch ${ref} in the twin workspace`);
    return c;
  }

  /** A file at a commit or branch tip, or undefined. */
  read(ref: string, path: string): string | undefined {
    return this.commit(ref).files.get(path);
  }

  /** The messages of every commit reachable from `ref`, newest first. */
  log(ref: string): string[] {
    return [...this.ancestors(this.commit(ref).id)]
      .map((id) => this.commit(id))
      .sort((a, b) => b.seq - a.seq)
      .map((c) => c.message);
  }

  /** True when `ancestor` (commit or branch) is `descendant` or one of its ancestors. */
  contains(descendant: string, ancestor: string): boolean {
    return this.isAncestor(this.commit(ancestor).id, this.commit(descendant).id);
  }

  /**
   * A commit made on `branch` from outside the pipeline (a person pushing to main): `files` maps a
   * path to its new content, or to null to delete it. The branch is created at `from` when missing.
   */
  commitOn(branch: string, files: Record<string, string | null>, message: string, from?: string): string {
    const parent = this.branches.get(branch) ?? this.requireBranch(from ?? this.mainBranch, 'branch to start from');
    const next = new Map(this.commit(parent).files);
    for (const [p, c] of Object.entries(files)) {
      if (c === null) next.delete(p);
      else next.set(p, c);
    }
    const c = this.newCommit([parent], message, next);
    this.branches.set(branch, c.id);
    return c.id;
  }

  /**
   * What an agent resolving a conflict does (`git merge <from>`, fix the files, commit): a merge
   * commit of `from` into the branch of the agent's worktree, each conflicting path taking its
   * content from `resolved` (a conflict left unresolved throws). The worktree must be clean.
   */
  mergeFrom(agentId: string, from: string, resolved: Record<string, string>, message: string): Promise<string> {
    return this.exclusive(`(agent) merge ${from} in ${agentId}`, async () => {
      const wt = this.trees.get(agentId);
      if (!wt?.branch) throw new Error(`the worktree of ${agentId} is on no branch`);
      await this.assertClean(wt, `merge ${from}`);
      const theirs = this.requireBranch(from, 'branch to merge');
      const m = this.threeWay(wt.head, theirs);
      for (const p of m.conflicts) {
        const c = resolved[p];
        if (c === undefined) throw new Error(`the conflict in ${p} was not resolved`);
        m.files.set(p, c);
      }
      const c = this.newCommit([wt.head, theirs], message, m.files);
      wt.head = c.id;
      this.branches.set(wt.branch, c.id);
      await this.materialise(wt);
      return c.id;
    });
  }

  /**
   * Another process holds a git lock that `call` needs (an editor's `git status`, a person's commit,
   * a crashed command's lock file): each such call fails with GitLockError and changes nothing, for
   * the next `times` calls, or until `release()`. The lock file named in the error defaults to the
   * one the real adapter would meet: the agent worktree's `index.lock` for prepare, commitAll and setAside,
   * the branch's ref lock for merge and ensureBranch.
   */
  holdLock(call: LockingCall, o: { times?: number; lockFile?: string } = {}): HeldLock {
    const hold: Hold = {
      call,
      lockFile:
        o.lockFile ??
        join(this.root, '.git', call === 'merge' || call === 'ensureBranch' ? 'refs/heads/main.lock' : 'index.lock'),
      remaining: o.times ?? Infinity,
      failed: 0,
    };
    this.holds.push(hold);
    return {
      lockFile: hold.lockFile,
      get failed() {
        return hold.failed;
      },
      release: () => {
        hold.remaining = 0;
      },
    };
  }

  // ------------------------------------------------------------------------------------------

  /** Throws GitLockError when a held lock is in the way of `call` (nothing done). */
  private meetLocks(call: string): void {
    const [name = ''] = call.split(' ');
    const hold = this.holds.find((h) => h.call === name && h.remaining > 0);
    if (!hold) return;
    hold.remaining--;
    hold.failed++;
    this.holds = this.holds.filter((h) => h.remaining > 0);
    throw new GitLockError(
      call.split(' '),
      this.root,
      128,
      `fatal: Unable to create '${hold.lockFile}': File exists.`,
      '',
      hold.lockFile,
    );
  }

  private exclusive<T>(call: string, body: () => Promise<T>): Promise<T> {
    this.calls.push(call);
    const fn = () => {
      this.meetLocks(call);
      return body();
    };
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private newCommit(parents: string[], message: string, files: Snapshot): MemoryCommit {
    const seq = this.seq++;
    const h = createHash('sha1').update(`${seq}\0${parents.join(' ')}\0${message}\0`);
    for (const [p, c] of [...files.entries()].sort(([a], [b]) => a.localeCompare(b))) h.update(`${p}\0${c}\0`);
    const c: MemoryCommit = { id: h.digest('hex'), parents, message, files: new Map(files), seq };
    this.commits.set(c.id, c);
    return c;
  }

  private requireBranch(name: string, role: string): string {
    const head = this.branches.get(name);
    if (head === undefined)
      throw new PipelineError('git', `The ${role} ${name} does not exist in the twin workspace.`, {
        where: role,
        fix: `Create it (git branch ${name}) or correct the branch name in the pipeline configuration.`,
      });
    return head;
  }

  private ancestors(id: string): Set<string> {
    const seen = new Set<string>();
    const todo = [id];
    while (todo.length) {
      const c = todo.pop()!;
      if (seen.has(c)) continue;
      seen.add(c);
      todo.push(...this.commit(c).parents);
    }
    return seen;
  }

  private isAncestor(ancestor: string, descendant: string): boolean {
    return this.ancestors(descendant).has(ancestor);
  }

  /** The newest common ancestor (no commit is older than its ancestors, so it is a best one). */
  private mergeBase(a: string, b: string): string {
    const ofA = this.ancestors(a);
    let best: MemoryCommit | undefined;
    for (const id of this.ancestors(b)) {
      const c = this.commit(id);
      if (ofA.has(id) && (!best || c.seq > best.seq)) best = c;
    }
    if (!best) throw new PipelineError('git', `${a} and ${b} share no history in the twin workspace.`);
    return best.id;
  }

  /** Path by path: a side that left a path as it was in the base takes the other side's version. */
  private threeWay(ours: string, theirs: string): { files: Map<string, string>; conflicts: string[] } {
    const base = this.commit(this.mergeBase(ours, theirs)).files;
    const o = this.commit(ours).files;
    const t = this.commit(theirs).files;
    const files = new Map<string, string>();
    const conflicts: string[] = [];
    for (const p of new Set([...base.keys(), ...o.keys(), ...t.keys()])) {
      const [b, x, y] = [base.get(p), o.get(p), t.get(p)];
      const merged = x === y || y === b ? x : x === b ? y : null;
      if (merged === null) conflicts.push(p);
      else if (merged !== undefined) files.set(p, merged);
    }
    return { files, conflicts: conflicts.sort() };
  }

  private async createWorktree(agentId: string, at?: string): Promise<Worktree> {
    const path = this.worktreePath(agentId);
    if (await exists(path)) {
      if ((await readdir(path)).length > 0)
        throw new PipelineError(
          'git',
          `Cannot create the worktree of ${agentId}: ${path} exists and is not a worktree.`,
          {
            where: path,
            fix: `Move ${path} out of the way, or set another worktreeRoot.`,
          },
        );
    }
    const wt: Worktree = {
      agentId,
      path,
      branch: undefined,
      head: at ?? this.requireBranch(this.mainBranch, 'branch'),
    };
    this.trees.set(agentId, wt);
    await this.materialise(wt);
    return wt;
  }

  /** Makes the directory hold exactly the worktree's commit (the task directory is left alone). */
  private async materialise(wt: Worktree): Promise<void> {
    await mkdir(wt.path, { recursive: true });
    const want = this.commit(wt.head).files;
    for (const p of (await readWorkingCopy(wt.path)).keys())
      if (!want.has(p)) await rm(join(wt.path, p), { force: true });
    for (const [p, c] of want) {
      const file = join(wt.path, p);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, c);
    }
  }

  private async assertClean(wt: Worktree, what: string): Promise<void> {
    const disk = await readWorkingCopy(wt.path);
    const head = this.commit(wt.head).files;
    const dirty = [...new Set([...disk.keys(), ...head.keys()])].filter((p) => disk.get(p) !== head.get(p)).sort();
    if (dirty.length)
      throw new DirtyWorktreeError(
        wt.path,
        dirty,
        `Cannot ${what}: ${wt.path} has uncommitted changes (${listFiles(dirty)}).`,
        `Commit them first (the engine does this with commitAll when ${wt.agentId} finishes), or stash them.`,
      );
  }
}

function subject(message: string): string {
  return message.split('\n')[0] ?? '';
}

function sameFiles(a: Snapshot, b: Snapshot): boolean {
  if (a.size !== b.size) return false;
  for (const [p, c] of a) if (b.get(p) !== c) return false;
  return true;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** The files in a worktree directory, the task directory left out. */
async function readWorkingCopy(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (d === dir && e.name === TASK_DIR) continue;
        await walk(p);
      } else if (e.isFile()) out.set(relative(dir, p).split(sep).join('/'), await readFile(p, 'utf8'));
    }
  };
  await walk(dir);
  return out;
}
