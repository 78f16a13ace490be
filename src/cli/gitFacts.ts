import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { GitFacts } from '../engine/rolloutCheck';
import type { Pipeline } from '../engine/pipeline';

const run = promisify(execFile);

async function git(cwd: string, args: string[]): Promise<string | null> {
  try {
    const { stdout } = await run('git', args, { cwd, timeout: 10_000, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' } });
    return stdout.trim();
  } catch {
    return null;
  }
}

/** What `rollout check` needs to know of the repository, read with read-only git calls. */
export async function gitFacts(p: Pipeline): Promise<GitFacts> {
  const root = p.home.root;
  const isRepo = (await git(root, ['rev-parse', '--git-dir'])) !== null;
  const target = p.config.targetBranch;
  const targetExists = isRepo && (await git(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${target}`])) !== null;
  let pilotAhead: number | null = null;
  if (targetExists && (await git(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${p.config.pilotBranch}`])) !== null) {
    const n = await git(root, ['rev-list', '--count', `refs/heads/${target}..refs/heads/${p.config.pilotBranch}`]);
    pilotAhead = n === null ? null : Number(n);
  }
  return { isRepo, targetExists, pilotAhead };
}
