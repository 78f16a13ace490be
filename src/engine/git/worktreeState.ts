import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { existsQuiet } from '../store/fsUtil';
import type { GitRepo } from './gitRepo';

/** What a worktree is in the middle of, read from the markers git leaves in its git dir. */
export type UnfinishedOperation = 'merge' | 'rebase' | 'cherry-pick' | 'revert';

const MARKERS: ReadonlyArray<readonly [string, UnfinishedOperation]> = [
  ['MERGE_HEAD', 'merge'],
  ['rebase-merge', 'rebase'],
  ['rebase-apply', 'rebase'],
  ['CHERRY_PICK_HEAD', 'cherry-pick'],
  ['REVERT_HEAD', 'revert'],
];

/**
 * The unfinished merge, rebase, cherry-pick or revert in the worktree whose git dir is `gitDir`: one
 * listing of the git dir (it is small), not a look-up per marker.
 */
export async function unfinishedOperation(gitDir: string): Promise<UnfinishedOperation | undefined> {
  let names: Set<string>;
  try {
    names = new Set(await readdir(gitDir));
  } catch {
    // Unreadable: look for each marker, as git would.
    for (const [marker, operation] of MARKERS) if (await existsQuiet(join(gitDir, marker))) return operation;
    return undefined;
  }
  for (const [marker, operation] of MARKERS) if (names.has(marker)) return operation;
  return undefined;
}

/**
 * Paths with uncommitted changes in the worktree at `cwd`: staged, unstaged and untracked (an
 * untracked file would follow the worktree to the next task's branch). Ignored files, the task
 * directory among them, do not count.
 */
export async function uncommittedFiles(repo: GitRepo, cwd: string): Promise<string[]> {
  const out = await repo.read(['status', '--porcelain=v1', '-z', '--untracked-files=all'], { cwd });
  const files: string[] = [];
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (!field || field.length < 4) continue;
    files.push(field.slice(3));
    // A rename or copy is followed by its source path, which is not a separate entry.
    if (field[0] === 'R' || field[0] === 'C') i++;
  }
  return files;
}

export interface WorktreeStatus {
  /** The branch checked out, undefined when HEAD is detached. */
  readonly branch: string | undefined;
  /** The commit checked out, undefined before the first commit. */
  readonly head: string | undefined;
  /** Uncommitted paths, as `uncommittedFiles` gives them. */
  readonly files: readonly string[];
}

/** Fields before the path in `git status --porcelain=v2` entries of each kind. */
const V2_FIELDS: Readonly<Record<string, number>> = { '1': 8, '2': 9, u: 10, '?': 1, '!': 1 };

/**
 * The branch, the commit and the uncommitted paths of the worktree at `cwd`, in one git command
 * (`status --porcelain=v2 --branch`), where `currentBranch` + `headOf` + `uncommittedFiles` take
 * three. No ahead/behind count: it is not needed and can be slow with an upstream.
 */
export async function worktreeStatus(repo: GitRepo, cwd: string): Promise<WorktreeStatus> {
  const out = await repo.read(
    ['status', '--porcelain=v2', '--branch', '--no-ahead-behind', '-z', '--untracked-files=all'],
    { cwd },
  );
  let branch: string | undefined;
  let head: string | undefined;
  let detached = false;
  const files: string[] = [];
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (!field) continue;
    if (field.startsWith('# branch.oid ')) {
      const oid = field.slice('# branch.oid '.length);
      head = oid === '(initial)' ? undefined : oid;
    } else if (field.startsWith('# branch.head ')) {
      const name = field.slice('# branch.head '.length);
      if (name === '(detached)') detached = true;
      else branch = name;
    } else if (!field.startsWith('#')) {
      const skip = V2_FIELDS[field[0] ?? ''];
      if (skip === undefined) continue;
      // The path is what follows the fixed fields (it may itself contain spaces).
      let at = 0;
      for (let k = 0; k < skip && at >= 0; k++) {
        const space = field.indexOf(' ', at);
        at = space < 0 ? -1 : space + 1;
      }
      if (at > 0) files.push(field.slice(at));
      // A rename or copy is followed by its source path, which is not a separate entry.
      if (field[0] === '2') i++;
    }
  }
  // "(detached)" is also a legal branch name: ask git in that one ambiguous case.
  if (detached) {
    const r = await repo.readResult(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd, okExitCodes: [0, 1] });
    if (r.exitCode === 0 && r.stdout.trim()) branch = r.stdout.trim();
  }
  return { branch, head, files };
}
