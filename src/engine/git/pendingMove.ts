import { lstat, readFile, readlink, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../store/fsUtil';
import { isGitLockError } from './gitErrors';
import type { GitRepo } from './gitRepo';

/**
 * A checked-out branch moves in two steps (branches.ts): its worktree's index and files, then, with
 * git's lock on the ref held all along, the ref. If the engine dies between the two (kill -9, a power
 * cut), git aborts the ref update but the files have moved, or some of them: `git read-tree -u`
 * writes the files first and the index last, and a `read-tree` whose engine died goes on alone or
 * dies with it half done. So the move is recorded (durably) in the worktree's git dir before any
 * file moves, and the record is removed only once the ref has moved or the files are back where the
 * ref is. Whoever finds a record left behind (the start-up repair, or the next move of that branch)
 * finishes it before doing anything else there, and a record is never overwritten.
 */

const RECORD = 'PIPELINE_MOVE';
/** The pathspec file of a roll-back (paths separated by NUL), next to the record. */
const PATHS = 'PIPELINE_MOVE.paths';

export interface PendingMove {
  readonly ref: string;
  readonly oldSha: string;
  readonly newSha: string;
}

/** The record's path in a worktree's git dir; named in messages for a person. */
export function moveRecordPath(gitDir: string): string {
  return join(gitDir, RECORD);
}

export async function recordMove(gitDir: string, move: PendingMove): Promise<void> {
  // Synced before the files move: a power cut must not keep the files' move and lose its record.
  await writeFileAtomic(join(gitDir, RECORD), `${move.ref} ${move.oldSha} ${move.newSha}\n`);
}

export async function clearMove(gitDir: string): Promise<void> {
  await rm(join(gitDir, RECORD), { force: true });
  await rm(join(gitDir, `${RECORD}.tmp`), { force: true });
  await rm(join(gitDir, PATHS), { force: true });
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
  /**
   * The worktree's `index.lock` is held: a `read-tree` of the move may still be running (its engine
   * died, it did not), or it died and left the lock. Kept for later, when the lock has gone.
   */
  | 'busy'
  /** Neither: a local change is in the way (`files`); the worktree was left as it is, for a person. */
  | 'left';

export interface MoveRecoveryResult {
  readonly move: PendingMove;
  readonly action: MoveRecovery;
  /** For 'left': the paths of the move whose content is neither the old nor the new commit's. */
  readonly files: readonly string[];
  /** For 'busy': the lock file that is held. */
  readonly lock?: string;
}

/**
 * Finishes a move recorded in the worktree at `path` (its git dir `gitDir`), if any. The caller holds
 * the worktree's lock (or the whole repository). When the ref did not move, every path the move
 * touches is put back to the old commit, in the index and on disk, provided each is at the old or
 * the new commit's content (or absent where that commit has no such file): only what the move itself
 * wrote is undone. A path in any other state is a local change in the way; then nothing is changed
 * and the record stays. The record is removed once the move is settled ('completed', 'rolled-back').
 */
export async function recoverMove(
  repo: GitRepo,
  path: string,
  gitDir: string,
): Promise<MoveRecoveryResult | undefined> {
  const move = await readMove(gitDir);
  if (!move) return undefined;
  const lock = join(gitDir, 'index.lock');
  if (await present(lock)) return { move, action: 'busy', files: [], lock };
  const tip = await repo.headOf(move.ref);
  if (tip === move.newSha || (tip !== undefined && tip !== move.oldSha && (await contains(repo, tip, move.newSha)))) {
    // The ref moved, so git had finished the files first (and maybe later moves followed).
    await clearMove(gitDir);
    return { move, action: 'completed', files: [] };
  }
  if (tip !== move.oldSha) {
    // Someone put the ref elsewhere (a reset): the record is obsolete when none of the move's paths
    // differs from the checkout's HEAD; otherwise what the files hold is for a person to judge.
    const touched = new Set((await changes(repo, move.oldSha, move.newSha)).map((c) => c.path));
    const dirty = (await statusPaths(repo, path)).filter((p) => touched.has(p));
    if (dirty.length) return { move, action: 'left', files: dirty };
    await clearMove(gitDir);
    return { move, action: 'completed', files: [] };
  }
  try {
    const blocked = await rollBack(repo, path, gitDir, move);
    if (blocked.length) return { move, action: 'left', files: blocked };
  } catch (e) {
    // Someone took the index meanwhile: nothing was written by the step that found it held.
    if (isGitLockError(e)) return { move, action: 'busy', files: [], lock };
    throw e;
  }
  await clearMove(gitDir);
  return { move, action: 'rolled-back', files: [] };
}

async function present(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function contains(repo: GitRepo, tip: string, commit: string): Promise<boolean> {
  const r = await repo.readResult(['merge-base', '--is-ancestor', commit, tip], { okExitCodes: [0, 1, 128] });
  return r.exitCode === 0;
}

/** Paths `git status` reports in the worktree (changed, staged or untracked). */
async function statusPaths(repo: GitRepo, path: string): Promise<string[]> {
  const out = await repo.read(['status', '--porcelain', '-z', '--untracked-files=all', '--no-renames'], { cwd: path });
  return out
    .split('\0')
    .filter((l) => l.length > 3)
    .map((l) => l.slice(3));
}

const ZERO = /^0+$/;

/** One path the move changes: its blob and mode in the old and the new commit (undefined when absent). */
interface Change {
  readonly path: string;
  readonly old: { sha: string; mode: string } | undefined;
  readonly new: { sha: string; mode: string } | undefined;
}

/** The paths that differ between two commits (`diff-tree -r -z`, no rename detection). */
async function changes(repo: GitRepo, from: string, to: string): Promise<Change[]> {
  const out = await repo.read(['diff-tree', '-r', '-z', '--no-renames', from, to]);
  const parts = out.split('\0');
  const list: Change[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i]!.replace(/^:/, '').split(' ');
    const [oldMode = '', newMode = '', oldSha = '', newSha = ''] = meta;
    const p = parts[i + 1]!;
    list.push({
      path: p,
      old: ZERO.test(oldSha) ? undefined : { sha: oldSha, mode: oldMode },
      new: ZERO.test(newSha) ? undefined : { sha: newSha, mode: newMode },
    });
  }
  return list;
}

/** Stage-0 index entries by path; a path with conflict stages maps to null. */
async function indexEntries(repo: GitRepo, cwd: string): Promise<Map<string, string | null>> {
  const out = await repo.read(['ls-files', '--stage', '-z'], { cwd });
  const map = new Map<string, string | null>();
  for (const line of out.split('\0')) {
    const m = /^(\d+) ([0-9a-f]+) (\d)\t(.*)$/s.exec(line);
    if (!m) continue;
    const [, , sha, stage, p] = m;
    map.set(p!, stage === '0' && map.get(p!) !== null ? sha! : null);
  }
  return map;
}

/**
 * The blob each path's file on disk would have (git's own clean filters applied, as `git add`
 * would), undefined where there is no file, null where it is something else (a directory).
 */
async function worktreeBlobs(
  repo: GitRepo,
  cwd: string,
  list: readonly Change[],
): Promise<Map<string, string | null | undefined>> {
  const blobs = new Map<string, string | null | undefined>();
  const files: string[] = [];
  for (const c of list) {
    let st;
    try {
      st = await lstat(join(cwd, c.path));
    } catch {
      blobs.set(c.path, undefined);
      continue;
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(join(cwd, c.path));
      let match: string | null = null;
      for (const side of [c.old, c.new]) {
        if (side?.mode !== '120000') continue;
        if ((await repo.read(['cat-file', 'blob', side.sha], { cwd })) === target) match = side.sha;
      }
      blobs.set(c.path, match);
    } else if (st.isFile()) files.push(c.path);
    else blobs.set(c.path, null);
  }
  for (let i = 0; i < files.length; i += 200) {
    const chunk = files.slice(i, i + 200);
    const shas = (await repo.read(['hash-object', '--', ...chunk], { cwd })).split('\n').filter(Boolean);
    chunk.forEach((p, j) => blobs.set(p, shas[j] ?? null));
  }
  return blobs;
}

/**
 * Puts every path that `move` changes back to the old commit, in the index and on disk, when each is
 * at the old or the new commit's state; otherwise changes nothing and returns the paths in the way.
 */
async function rollBack(repo: GitRepo, path: string, gitDir: string, move: PendingMove): Promise<string[]> {
  const list = await changes(repo, move.oldSha, move.newSha);
  const index = await indexEntries(repo, path);
  const disk = await worktreeBlobs(repo, path, list);
  const blocked: string[] = [];
  const back: Change[] = [];
  for (const c of list) {
    const states = [c.old?.sha, c.new?.sha];
    const onDisk = disk.get(c.path);
    const inIndex = index.has(c.path) ? index.get(c.path) : undefined;
    if (onDisk === null || inIndex === null || !states.includes(inIndex)) {
      blocked.push(c.path);
      continue;
    }
    // A file the move deleted, or was about to write, may be gone: the move's doing either way.
    if (onDisk !== undefined && !states.includes(onDisk) && !(await cutShort(repo, path, c))) {
      blocked.push(c.path);
      continue;
    }
    if (onDisk !== c.old?.sha || inIndex !== c.old?.sha) back.push(c);
  }
  if (blocked.length || back.length === 0) return blocked;
  const pathFile = join(gitDir, PATHS);
  const run = async (args: string[], paths: readonly Change[]) => {
    await writeFile(pathFile, paths.map((c) => c.path).join('\0'));
    await repo.mutate(['--literal-pathspecs', ...args, `--pathspec-from-file=${pathFile}`, '--pathspec-file-nul'], {
      cwd: path,
      lockRetries: false,
    });
  };
  const added = back.filter((c) => !c.old);
  const kept = back.filter((c) => c.old);
  // Files the move added: out of the index, then off the disk (each is the move's own file, or gone).
  if (added.length) {
    await run(['reset', '--quiet', move.oldSha], added);
    for (const c of added) await unlink(join(path, c.path)).catch(() => undefined);
    await removeEmptyParents(path, added);
  }
  // Files the move changed or deleted: the old commit's content, in the index and on disk.
  if (kept.length) await run(['checkout', move.oldSha], kept);
  await rm(pathFile, { force: true });
  await fsyncDir(gitDir);
  return [];
}

/**
 * A file the move was writing when it died: git writes each file of a checkout anew (the old one
 * removed first), so one cut short holds the start of the new content. A person's file at a path the
 * move adds would have refused the move before anything was written, and a person's edit being the
 * exact start of the new content is not a case to plan for.
 */
async function cutShort(repo: GitRepo, path: string, c: Change): Promise<boolean> {
  if (!c.new || c.new.mode === '120000') return false;
  let text: string;
  try {
    text = await readFile(join(path, c.path), 'utf8');
  } catch {
    return false;
  }
  const blob = await repo.read(['cat-file', 'blob', c.new.sha], { cwd: path });
  // A cut in the middle of a multi-byte character decodes as a replacement character.
  const start = text.replace(/\uFFFD$/, '');
  return start.length < blob.length && blob.startsWith(start);
}

/** Directories left empty by removing the move's added files (deepest first), up to the worktree's top. */
async function removeEmptyParents(top: string, added: readonly Change[]): Promise<void> {
  const dirs = new Set<string>();
  for (const c of added) for (let d = dirname(c.path); d !== '.' && d !== ''; d = dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    await rmdir(join(top, d)).catch(() => undefined);
  }
}
