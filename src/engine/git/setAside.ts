import { existsSync } from 'node:fs';
import type { GitRepo } from './gitRepo';
import { withMessageFile } from './messageFile';
import { uncommittedFiles, unfinishedOperation } from './worktreeState';

/**
 * Work an attempt left uncommitted when it ended without its marker (a failed check, a crash, a
 * timeout, a person's block), and commits it made on a detached HEAD that nothing else reaches:
 * kept as a commit under `ref` (its parent the worktree's HEAD, so
 * `git diff <ref>^ <ref>` shows exactly what was left) and then cleared from the worktree, so the
 * agent's next prepare finds it clean. The task's branch does not move: work that did not finish
 * its stage is not the stage's work. Ignored files (build output, the task directory) stay.
 *
 * Returns the ref written (a numbered one when `ref` already exists, so nothing is overwritten), or
 * null when the worktree was clean or does not exist. The caller holds the worktree's lock.
 */
export async function setAsideWork(repo: GitRepo, path: string, ref: string, message: string): Promise<string | null> {
  if (!existsSync(path)) return null;
  const gitDir = await repo.gitDirOf(path);
  const operation = await unfinishedOperation(gitDir);
  const dirty = operation !== undefined || (await uncommittedFiles(repo, path)).length > 0;
  const head = await repo.headOf('HEAD', path);
  // Commits made on a detached HEAD that no ref reaches would be lost at the next checkout.
  const stranded = head !== undefined && (await repo.currentBranch(path)) === undefined && !(await reached(repo, head));
  if (!dirty && !stranded) return null;
  let commit = head!;
  if (dirty) {
    // The index is rebuilt from HEAD below, so staging everything in it loses nothing; conflicted
    // files are recorded as they are, markers and all.
    await repo.mutate(['add', '--all'], { cwd: path });
    const tree = (await repo.mutate(['write-tree'], { cwd: path })).trim();
    commit = (
      await withMessageFile(message, (file) =>
        repo.mutate(['commit-tree', tree, ...(head ? ['-p', head] : []), '-F', file], { cwd: path }),
      )
    ).trim();
  }
  const written = await freeRef(repo, ref);
  // Created only if still absent (the all-zero old value): a ref is never overwritten.
  await repo.mutate(['update-ref', written, commit, '0'.repeat(head?.length ?? 40)]);
  // A rebase, cherry-pick or revert under way is left (its work is in the commit above); a merge
  // ends with the reset.
  if (operation && operation !== 'merge') await repo.mutate([operation, '--quit'], { cwd: path });
  if (dirty && head) await repo.mutate(['reset', '--quiet', '--hard', 'HEAD'], { cwd: path });
  else if (dirty) await repo.mutate(['rm', '-r', '--cached', '--quiet', '--ignore-unmatch', '.'], { cwd: path });
  if (dirty) {
    await repo.mutate(['clean', '-d', '--force', '--quiet'], { cwd: path });
  }
  return written;
}

/** True when some branch or other ref reaches `commit`. */
async function reached(repo: GitRepo, commit: string): Promise<boolean> {
  const refs = await repo.read(['for-each-ref', '--count=1', '--format=%(refname)', '--contains', commit]);
  return refs.trim() !== '';
}

/** `ref`, or `ref-2`, `ref-3`… when it exists already. */
async function freeRef(repo: GitRepo, ref: string): Promise<string> {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? ref : `${ref}-${n}`;
    const exists = await repo.readResult(['rev-parse', '--verify', '--quiet', candidate], { okExitCodes: [0, 1] });
    if (exists.exitCode !== 0) return candidate;
  }
}
