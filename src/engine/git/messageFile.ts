import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Runs `fn` with the path of a temporary file holding `message`, for `git commit -F` and
 * `git commit-tree -F`. Commit messages carry task titles (text from users and agents); passed with
 * `-m`, simple-git's argument checks reject a title that merely mentions an option such as
 * `--upload-pack`, so the text goes through a file and never appears on the command line at all.
 */
export async function withMessageFile<T>(message: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-msg-'));
  const file = join(dir, 'MESSAGE');
  try {
    await writeFile(file, message.endsWith('\n') ? message : `${message}\n`, { mode: 0o600 });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
