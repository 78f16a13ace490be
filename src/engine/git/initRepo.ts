import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { simpleGit } from 'simple-git';
import { ALLOWED_GIT_ENV, gitEnvironment } from './gitEnv';
import { GitRepo } from './gitRepo';
import { assertBranchName } from './refNames';

export interface InitRepoOptions {
  /** The initial branch. Default `main`. */
  readonly branch?: string;
  /** Files of the initial commit, by relative path. Default: a README.md. */
  readonly files?: Readonly<Record<string, string>>;
  readonly userName?: string;
  readonly userEmail?: string;
}

/**
 * Creates a repository with an initial commit on `main`, for tests and the demo. The identity is
 * set in the repository's own config, so commits work on a machine (a CI runner) with no global git
 * identity, and signing is off there so a global `commit.gpgsign` cannot make it wait for a key.
 */
export async function initRepo(dir: string, options: InitRepoOptions = {}): Promise<GitRepo> {
  const at = resolve(dir);
  const branch = assertBranchName(options.branch ?? 'main');
  await mkdir(at, { recursive: true });
  await simpleGit({ baseDir: at, allowEnvironment: [...ALLOWED_GIT_ENV], timeout: { block: 60_000 } })
    .env(gitEnvironment(false))
    .raw(['init', '--quiet', `--initial-branch=${branch}`]);
  const repo = await GitRepo.open(at);
  await repo.mutate(['config', 'user.name', options.userName ?? 'Agent Pipeline']);
  await repo.mutate(['config', 'user.email', options.userEmail ?? 'agent-pipeline@localhost']);
  await repo.mutate(['config', 'commit.gpgsign', 'false']);
  const files = options.files ?? { 'README.md': '# Demo repository\n' };
  for (const [name, content] of Object.entries(files)) {
    const file = join(at, name);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  await repo.mutate(['add', '--all']);
  await repo.mutate(['commit', '--quiet', '--no-verify', '--allow-empty', '--message=Initial commit']);
  return repo;
}
