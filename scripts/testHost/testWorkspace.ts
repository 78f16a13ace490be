// A throwaway workspace for tests inside VS Code: a git repository, by default with a pipeline
// (`.pipeline/config.json`, which is what makes the extension activate through
// `workspaceContains:.pipeline/config.json`). The pipeline is made by the engine itself, as
// `pipeline init` would: the default stages and a quick retry policy. The in-host tests add agents and
// tasks through the extension's API, to watch the views follow; UI tests can have them added here,
// before VS Code opens.
//
// The repository lives one level down in its temp dir, because the engine puts agent worktrees
// beside the repository (`<repo>.pipeline-worktrees`): dispose() removes both.
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRepo } from '../../src/engine/git/initRepo';
import { Pipeline } from '../../src/engine/pipeline';
import { initHome } from '../../src/engine/home/pipelineInit';
import { DEFAULT_STAGES, type StageConfig } from '../../src/engine/model/configSchema';
import { type TaskSpec } from '../../src/engine/model/schema';

export interface TestWorkspaceOptions {
  /** Create `.pipeline/` (default true). Without it the folder is a plain git repository. */
  pipeline?: boolean;
  /**
   * Also write a `.code-workspace` file whose only folder is the repository, for VS Code to open
   * instead of the folder. Adding a folder to a window opened on a folder turns it into a new
   * untitled workspace, which the web workbench opens by reloading the page; a window opened on a
   * workspace file just gains the folder.
   */
  workspaceFile?: boolean;
  /** The stages (default: the four default ones). */
  stages?: StageConfig[];
  /** Agents to add, each running the scripted agent. */
  agents?: { id: string; role: string }[];
  tasks?: TaskSpec[];
}

export interface TestWorkspace {
  /** The repository: the folder VS Code opens, or the first folder of the workspace file. */
  readonly path: string;
  /** What VS Code opens: the repository, or the `.code-workspace` file. */
  readonly open: string;
  dispose(): Promise<void>;
}

export async function createTestWorkspace(options: TestWorkspaceOptions = {}): Promise<TestWorkspace> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-pipeline-workspace-'));
  const path = join(dir, 'sample');
  let open = path;
  try {
    await initRepo(path, {
      files: { 'README.md': '# Test workspace\n', 'src/index.js': "exports.name = 'sample';\n" },
      userName: 'Agent Pipeline Tests',
      userEmail: 'tests@agent-pipeline.invalid',
    });
    if (options.pipeline ?? true) {
      await initHome(path, {
        targetBranch: 'main',
        stages: options.stages ?? DEFAULT_STAGES,
        retry: { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, jitter: 0.2 },
      });
      if (options.agents?.length || options.tasks?.length) {
        const p = await Pipeline.open({ cwd: path, role: 'lead', label: 'test workspace set-up' });
        try {
          for (const a of options.agents ?? []) await p.addAgent({ ...a, command: 'scripted' });
          await p.addTasks((options.tasks ?? []).map((spec) => ({ spec, source: 'test workspace' })));
        } finally {
          await p.close();
        }
      }
    }
    if (options.workspaceFile) {
      open = join(dir, 'sample.code-workspace');
      await writeFile(open, JSON.stringify({ folders: [{ path: 'sample' }], settings: {} }, null, 2) + '\n');
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // If the process is ended before dispose() (the test host library turns SIGINT and SIGTERM into
  // an orderly exit), the workspace still goes.
  const removeOnExit = (): void => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeOnExit);
  return {
    path,
    open,
    dispose: async () => {
      process.off('exit', removeOnExit);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
