import { PipelineError } from '../errors';
import { taskBranch } from '../model/ids';
import { refsIfContains, requireBranch } from './branches';
import type { GitRepo } from './gitRepo';
import { branchRef } from './refNames';

/**
 * What a task changed: the commits and files on its branch since the merge base with the target
 * branch. Feeds the next stage's task file ("what the earlier stages left") and the editor's
 * "show diff against the target branch" action. Read-only.
 */

export interface TaskCommit {
  readonly sha: string;
  readonly parents: readonly string[];
  readonly author: string;
  /** ISO 8601, with the author's offset. */
  readonly date: string;
  readonly subject: string;
}

export type FileChangeStatus =
  'added' | 'modified' | 'deleted' | 'renamed' | 'copied' | 'type-changed' | 'unmerged' | 'unknown';

export interface FileChange {
  readonly path: string;
  readonly status: FileChangeStatus;
  /** The path before a rename or copy. */
  readonly from?: string;
}

export interface TaskChanges {
  readonly branch: string;
  readonly target: string;
  /** The merge base of the task branch and the target. */
  readonly base: string;
  readonly head: string;
  /** Newest first. */
  readonly commits: readonly TaskCommit[];
  readonly files: readonly FileChange[];
}

const STATUS: Readonly<Record<string, FileChangeStatus>> = {
  A: 'added',
  M: 'modified',
  D: 'deleted',
  R: 'renamed',
  C: 'copied',
  T: 'type-changed',
  U: 'unmerged',
};

async function resolveRange(
  repo: GitRepo,
  taskId: string,
  target: string,
): Promise<{ branch: string; base: string; head: string }> {
  const branch = taskBranch(taskId);
  // The usual case (the branch was brought up to date with the target when its stage started):
  // one command, and the target is the merge base.
  const fast = await refsIfContains(repo, branch, target);
  if (fast) return { branch, base: fast.target, head: fast.branch };
  const head = await requireBranch(repo, branch, 'task branch');
  const targetHead = await requireBranch(repo, target, 'target branch');
  const r = await repo.readResult(['merge-base', targetHead, head], { okExitCodes: [0, 1] });
  const base = r.stdout.trim();
  if (r.exitCode !== 0 || !base) {
    throw new PipelineError('git', `${branch} and ${target} share no history.`, {
      fix: `Check that ${branch} was created from ${target}.`,
    });
  }
  return { branch, base, head };
}

export function parseNameStatus(z: string): FileChange[] {
  const fields = z.split('\0');
  const out: FileChange[] = [];
  for (let i = 0; i < fields.length; i++) {
    const code = fields[i];
    if (!code) continue;
    const status = STATUS[code[0] ?? ''] ?? 'unknown';
    if (status === 'renamed' || status === 'copied') {
      const from = fields[i + 1] ?? '';
      const path = fields[i + 2] ?? '';
      out.push({ path, status, from });
      i += 2;
    } else {
      out.push({ path: fields[i + 1] ?? '', status });
      i += 1;
    }
  }
  return out;
}

/** Fields separated by US, commits by NUL (-z): neither occurs in names or subjects. */
const LOG_FORMAT = '--format=%H%x1f%P%x1f%an%x1f%aI%x1f%s';

function parseLog(log: string): TaskCommit[] {
  return log
    .split('\0')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const [sha = '', parents = '', author = '', date = '', subject = ''] = line.replace(/^\n/, '').split('\x1f');
      return { sha, parents: parents.split(' ').filter(Boolean), author, date, subject };
    });
}

export async function taskChanges(repo: GitRepo, taskId: string, targetBranch: string): Promise<TaskChanges> {
  const { branch, base, head } = await resolveRange(repo, taskId, targetBranch);
  // Nothing on the branch since the base (a first stage): no commits, no files.
  if (base === head) return { branch, target: targetBranch, base, head, commits: [], files: [] };
  const commits = parseLog(await repo.read(['log', '-z', LOG_FORMAT, `${base}..${head}`]));
  const files = parseNameStatus(
    await repo.read(['diff', '--name-status', '-z', '--find-renames', '--no-ext-diff', base, head]),
  );
  return { branch, target: targetBranch, base, head, commits, files };
}

/**
 * The commits and files of `taskChanges` (not its base and head) in two git commands instead of
 * three to five, for the next stage's task file, which is written on the handoff's critical path:
 * git resolves the branches itself, `target..branch` for the commits and `target...branch` (from
 * their merge base) for the files. When either fails (a branch is missing, the two share no history),
 * `taskChanges` runs for its clear error.
 */
export async function taskWork(
  repo: GitRepo,
  taskId: string,
  targetBranch: string,
): Promise<Pick<TaskChanges, 'commits' | 'files'>> {
  const target = branchRef(targetBranch, 'target branch');
  const branch = branchRef(taskBranch(taskId), 'task branch');
  // `--` : the range is a revision, never a path.
  // Both at once: they read the same objects and neither waits for the other's answer.
  const [log, diff] = await Promise.all([
    repo.readResult(['log', '-z', LOG_FORMAT, `${target}..${branch}`, '--'], { okExitCodes: [0, 128] }),
    repo.readResult(['diff', '--name-status', '-z', '--find-renames', '--no-ext-diff', `${target}...${branch}`, '--'], {
      okExitCodes: [0, 128],
    }),
  ]);
  if (log.exitCode === 0 && diff.exitCode === 0)
    return { commits: parseLog(log.stdout), files: parseNameStatus(diff.stdout) };
  return taskChanges(repo, taskId, targetBranch);
}

/**
 * The unified diff of the task branch against the target since their merge base (what
 * `git diff target...branch` shows), optionally limited to some paths. External diff drivers and
 * textconv filters are off: the text is git's own.
 */
export async function diffAgainstTarget(
  repo: GitRepo,
  taskId: string,
  targetBranch: string,
  paths: readonly string[] = [],
): Promise<string> {
  const { base, head } = await resolveRange(repo, taskId, targetBranch);
  const args = ['diff', '--no-color', '--no-ext-diff', '--no-textconv', '--find-renames', base, head];
  if (paths.length > 0) args.push('--', ...paths.map((p) => `:(literal)${p}`));
  return repo.read(args);
}
