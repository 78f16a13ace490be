// A throwaway workspace for tests inside VS Code: a git repository with `.pipeline/config.json`,
// which is what makes the extension activate (`workspaceContains:.pipeline/config.json`).
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestWorkspace {
  readonly path: string;
  dispose(): Promise<void>;
}

export async function createTestWorkspace(): Promise<TestWorkspace> {
  const path = await mkdtemp(join(tmpdir(), 'agent-pipeline-workspace-'));
  try {
    await mkdir(join(path, '.pipeline'));
    await writeFile(join(path, '.pipeline', 'config.json'), '{}\n');
    await writeFile(join(path, 'README.md'), '# Test workspace\n');
    const git = (...args: string[]): Promise<unknown> =>
      run('git', ['-c', 'user.name=Agent Pipeline Tests', '-c', 'user.email=tests@agent-pipeline.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: path, timeout: 30_000 });
    await git('init', '-q', '-b', 'main');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'Test workspace');
  } catch (err) {
    await rm(path, { recursive: true, force: true });
    throw err;
  }
  // If the process is ended before dispose() (the test host library turns SIGINT and SIGTERM into
  // an orderly exit), the workspace still goes.
  const removeOnExit = (): void => rmSync(path, { recursive: true, force: true });
  process.on('exit', removeOnExit);
  return {
    path,
    dispose: async () => {
      process.off('exit', removeOnExit);
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
