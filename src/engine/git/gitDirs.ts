import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Where git keeps a working tree's git dir, read as git reads it, without starting git. */

export async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The git dir named by the `.git` file at the top of a linked worktree (`gitdir: <path>`), or the
 * `.git` directory of a main working tree: what git itself reads to find it, without starting git.
 * Undefined when `cwd` is not the top of a working tree (a subdirectory, a missing directory) or the
 * git dir it names is gone; the caller asks git then, which explains the problem.
 */
export async function gitDirFromDotGit(cwd: string): Promise<string | undefined> {
  const dotGit = join(cwd, '.git');
  try {
    const s = await stat(dotGit);
    if (s.isDirectory()) return dotGit;
    if (!s.isFile()) return undefined;
    const m = /^gitdir: (.+?)\r?\n?$/.exec(await readFile(dotGit, 'utf8'));
    if (!m?.[1]) return undefined;
    const dir = resolve(cwd, m[1]);
    return (await isDirectory(dir)) ? dir : undefined;
  } catch {
    return undefined;
  }
}
