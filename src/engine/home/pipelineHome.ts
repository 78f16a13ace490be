import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors';

/**
 * Where a pipeline keeps its files: `.pipeline/` at the repository root holds the configuration, the
 * state (snapshot and journal), the leader lease, the inbox for requests from other processes, the
 * logs and the per-task evidence. Found from a directory upwards, the way git finds `.git`.
 */
export interface PipelineHome {
  /** The repository root (the directory that holds `.pipeline/`). */
  readonly root: string;
  readonly dir: string;
  readonly configFile: string;
  readonly stateDir: string;
  readonly leaderDir: string;
  readonly inboxDir: string;
  readonly logsDir: string;
  readonly evidenceDir: string;
  readonly currentTaskFile: string;
}

export const HOME_DIR_NAME = '.pipeline';

export function homeAt(root: string): PipelineHome {
  const r = resolve(root);
  const dir = join(r, HOME_DIR_NAME);
  return {
    root: r,
    dir,
    configFile: join(dir, 'config.json'),
    stateDir: join(dir, 'state'),
    leaderDir: dir,
    inboxDir: join(dir, 'inbox'),
    logsDir: join(dir, 'logs'),
    evidenceDir: join(dir, 'evidence'),
    currentTaskFile: join(dir, 'current-task.txt'),
  };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Finds the pipeline home from `from` upwards; throws `not-initialised` naming where it looked. */
export async function findHome(from: string): Promise<PipelineHome> {
  let dir = resolve(from);
  for (;;) {
    const home = homeAt(dir);
    if (await isFile(home.configFile)) return home;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new PipelineError('not-initialised', `No pipeline found in ${resolve(from)} or any parent directory.`, {
    fix: 'Run `pipeline init` at the root of your git repository.',
  });
}

/**
 * Where agent worktrees live: outside the main working tree (so the user's tools do not index them),
 * beside the repository and named after it, so two repositories in one folder do not share it.
 */
export function worktreeRootOf(home: PipelineHome, configured: string | undefined): string {
  return resolve(home.root, configured ?? `../${basename(home.root)}.pipeline-worktrees`);
}
