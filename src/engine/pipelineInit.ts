import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { writeConfig } from './configFile';
import { PipelineError } from './errors';
import { homeAt, type PipelineHome } from './pipelineHome';
import type { configSchema } from './schema';

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
  if (exists) throw new PipelineError('already-initialised', `A pipeline exists already: ${home.configFile}.`, { file: home.configFile, fix: 'Edit that file, or remove .pipeline/ to start over.' });
  await mkdir(home.dir, { recursive: true });
  await writeConfig(home.configFile, config);
  await writeFile(join(home.dir, '.gitignore'), HOME_GITIGNORE);
  return home;
}
