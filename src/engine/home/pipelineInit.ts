import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { writeConfig } from './configFile';
import { PipelineError } from '../errors';
import { homeAt, type PipelineHome } from './pipelineHome';
import { GitRepo } from '../git/gitRepo';
import { DEFAULT_STAGES, type configSchema } from '../model/configSchema';

/** Files in `.pipeline/` that belong to one machine's run, not to the repository. */
const HOME_GITIGNORE = ['state/', 'leader/', 'inbox/', 'logs/', 'evidence/', 'run/', 'current-task.txt', ''].join('\n');

/**
 * Creates `.pipeline/` at a repository root: the configuration (tracked, so a team shares it) and a
 * .gitignore for the files that belong to one machine's run. Refuses to overwrite an existing one.
 */
export async function initHome(root: string, config: z.input<typeof configSchema>): Promise<PipelineHome> {
  const home = homeAt(root);
  const exists = await stat(home.configFile).then(
    () => true,
    () => false,
  );
  if (exists)
    throw new PipelineError('already-initialised', `A pipeline exists already: ${home.configFile}.`, {
      file: home.configFile,
      fix: 'Edit that file, or remove .pipeline/ to start over.',
    });
  await mkdir(home.dir, { recursive: true });
  await writeConfig(home.configFile, config);
  await writeFile(join(home.dir, '.gitignore'), HOME_GITIGNORE);
  return home;
}

/**
 * `pipeline init` and the extension's Initialise command: `.pipeline/` at the root of the git
 * repository that holds `dir` (or in `dir` itself with `here`), with the default stages and, unless given, the current branch as the
 * target. A directory outside any repository is an error that says to run `git init` first.
 */
export async function initPipelineAt(
  dir: string,
  opts: { target?: string; here?: boolean } = {},
): Promise<{ home: PipelineHome; target: string }> {
  let repo: GitRepo;
  try {
    repo = await GitRepo.open(dir);
  } catch {
    throw new PipelineError('not-initialised', `${dir} is not inside a git repository.`, {
      fix: 'Run `git init` (and make a first commit) first, then initialise the pipeline.',
    });
  }
  const current = await repo.currentBranch();
  if (opts.target !== undefined) await assertTargetBranch(repo, opts.target, current);
  const target = opts.target ?? current ?? 'main';
  // `here`: in `dir` itself (the editor's workspace folder, where the extension looks for it).
  const home = await initHome(opts.here ? dir : repo.root, { targetBranch: target, stages: DEFAULT_STAGES });
  return { home, target };
}

/**
 * The target branch given to `pipeline init --target` must exist (or be the current branch of a
 * repository with no commit yet): approved work is merged into it, and a typo would only show up at
 * the first merge, after every stage of the first task had run.
 */
async function assertTargetBranch(repo: GitRepo, target: string, current: string | undefined): Promise<void> {
  if (target === current) return;
  const valid = target !== '' && !target.startsWith('-');
  if (valid && (await repo.branchHead(target))) return;
  const branches = (await repo.read(['for-each-ref', '--format=%(refname:short)', 'refs/heads']))
    .split('\n')
    .filter(Boolean);
  throw new PipelineError('usage', `There is no branch ${JSON.stringify(target)} in ${repo.root}.`, {
    where: '--target',
    fix: `Name an existing branch${branches.length ? ` (${branches.join(', ')})` : ''}, create it first (\`git branch <name>\`), or leave --target out to use the current branch${current ? ` (${current})` : ''}.`,
  });
}
