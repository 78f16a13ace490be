import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRepo } from './gitRepo';

/**
 * A checked-out branch moves in two steps (branches.ts): its worktree's index and files, then, with
 * git's lock on the ref held all along, the ref. If the engine dies between the two (kill -9, a power
 * cut), git aborts the ref update but the files have moved: the checkout would look as if it had
 * undone the merge. So the move is recorded in the worktree's git dir before the files move and the
 * record removed once the ref has moved (or the move was abandoned); the start-up repair finds a
 * record left behind and puts the files back where the ref is.
 */

const RECORD = 'PIPELINE_MOVE';

export interface PendingMove {
  readonly ref: string;
  readonly oldSha: string;
  readonly newSha: string;
}

export async function recordMove(gitDir: string, move: PendingMove): Promise<void> {
  const tmp = join(gitDir, `${RECORD}.tmp`);
  await writeFile(tmp, `${move.ref} ${move.oldSha} ${move.newSha}\n`);
  await rename(tmp, join(gitDir, RECORD));
}

export async function clearMove(gitDir: string): Promise<void> {
  await rm(join(gitDir, RECORD), { force: true });
  await rm(join(gitDir, `${RECORD}.tmp`), { force: true });
}

export async function readMove(gitDir: string): Promise<PendingMove | undefined> {
  let text: string;
  try {
    text = await readFile(join(gitDir, RECORD), 'utf8');
  } catch {
    return undefined;
  }
  const [ref, oldSha, newSha] = text.trim().split(' ');
  return ref && oldSha && newSha ? { ref, oldSha, newSha } : undefined;
}

export type MoveRecovery =
  /** The ref had moved: the move was complete. */
  | 'completed'
  /** The ref had not moved: the files were put back at the old commit (or had not moved). */
  | 'rolled-back'
  /** Neither: the worktree was left as it is, for a person to look at. */
  | 'left';

/**
 * Finishes a move recorded in the worktree at `path` (its git dir `gitDir`), if any. The caller holds
 * the repository exclusively (the start-up repair). Putting the files back is git's two-tree merge
 * from the new commit to the old one, which refuses (and changes nothing) where a local change is in
 * the way; then the worktree is left as it is and reported.
 */
export async function recoverMove(
  repo: GitRepo,
  path: string,
  gitDir: string,
): Promise<{ move: PendingMove; action: MoveRecovery } | undefined> {
  const move = await readMove(gitDir);
  if (!move) return undefined;
  const tip = await repo.headOf(move.ref);
  let action: MoveRecovery = 'left';
  if (tip === move.newSha) action = 'completed';
  else if (tip === move.oldSha) {
    const back = await repo.mutateResult(['read-tree', '-m', '-u', move.newSha, move.oldSha], {
      cwd: path,
      okExitCodes: [0, 128],
    });
    if (back.exitCode === 0) action = 'rolled-back';
  }
  if (action !== 'left') await clearMove(gitDir);
  return { move, action };
}
