// src/engine/home/ — a pipeline's home, `.pipeline/` at the repository root: where its files are, its
// configuration file, `pipeline init`. Main file: this one. It imports the model, ../errors, the store's
// file names and atomic write, the import's JSON error places, the inbox and git's repository helpers for
// init.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { inboxWarnings } from '../inbox';
import { SEGMENT_RE, SNAPSHOT_RE } from '../store/storeFiles';

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

async function kindOf(p: string): Promise<'file' | 'dir' | undefined> {
  try {
    const st = await stat(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds the pipeline home from `from` upwards; throws `not-initialised` naming where it looked. A
 * `.pipeline/` directory without its config.json is not a pipeline, but it is not nothing either:
 * when no complete one is found further up, the error names it and says how to recreate the config.
 */
export async function findHome(from: string): Promise<PipelineHome> {
  let dir = resolve(from);
  let withoutConfig: PipelineHome | undefined;
  for (;;) {
    const home = homeAt(dir);
    if ((await kindOf(home.configFile)) === 'file') return home;
    if (!withoutConfig && (await kindOf(home.dir)) === 'dir') withoutConfig = home;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  if (withoutConfig) {
    const kept = (await kindOf(withoutConfig.stateDir)) === 'dir';
    throw new PipelineError(
      'not-initialised',
      `${withoutConfig.dir} exists, but its configuration ${withoutConfig.configFile} is missing.`,
      {
        file: withoutConfig.configFile,
        fix: `Restore it from git if it was committed (\`git checkout -- ${HOME_DIR_NAME}/config.json\` in ${withoutConfig.root}), or run \`pipeline init\` there to write a new one with the default stages${kept ? `; init keeps the state (tasks and agents) in ${withoutConfig.stateDir}` : ''}.`,
      },
    );
  }
  throw new PipelineError('not-initialised', `No pipeline found in ${resolve(from)} or any parent directory.`, {
    fix: 'Run `pipeline init` at the root of your git repository.',
  });
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

/**
 * Warnings about the home directory that no single part of the engine sees: a state directory that
 * is missing or empty although the pipeline has written state before (a leader claimed an epoch,
 * and every leader starts a journal file; or it has logs), and inbox requests moved aside. A
 * pipeline whose state is in PostgreSQL (`stateInFiles` false) has no state directory to miss.
 */
export async function homeWarnings(home: PipelineHome, stateInFiles = true): Promise<string[]> {
  const out: string[] = [];
  out.push(...(stateInFiles ? await stateDirWarnings(home) : []));
  out.push(...(await inboxWarnings(home.inboxDir)));
  return out;
}

async function stateDirWarnings(home: PipelineHome): Promise<string[]> {
  const out: string[] = [];
  const stateKind = await kindOf(home.stateDir);
  const hasState =
    stateKind === 'dir' && (await names(home.stateDir)).some((n) => SEGMENT_RE.test(n) || SNAPSHOT_RE.test(n));
  if (stateKind !== 'file' && !hasState) {
    const epochs = (await names(join(home.leaderDir, 'leader'))).filter((n) => /^epoch-\d+\.json$/.test(n));
    const logs = (await names(home.logsDir)).filter((n) => n.startsWith('pipeline.log'));
    const evidence = [
      ...(epochs.length ? [`leader epochs in ${join(home.leaderDir, 'leader')}`] : []),
      ...(logs.length ? [`logs in ${home.logsDir}`] : []),
    ];
    if (evidence.length > 0) {
      out.push(
        `The state directory ${home.stateDir} is ${stateKind === 'dir' ? 'empty (no journal or snapshot)' : 'missing'}, but this pipeline has written state before (${evidence.join(', ')}): the tasks and agents it held are not there. If it was deleted or moved by mistake, restore it from a backup before anything writes; the next change starts a new, empty state.`,
      );
    }
  }
  return out;
}

/**
 * Where agent worktrees live: outside the main working tree (so the user's tools do not index them),
 * beside the repository and named after it, so two repositories in one folder do not share it.
 */
export function worktreeRootOf(home: PipelineHome, configured: string | undefined): string {
  return resolve(home.root, configured ?? `../${basename(home.root)}.pipeline-worktrees`);
}
