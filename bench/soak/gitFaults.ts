import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { git, readState, type Sandbox } from '../../test/engine/monitor/monitorKit';
import type { PipelineState } from '../../src/engine/model/schema';
import type { GitFault } from './soakPlan';

/**
 * The git faults a soak trial leaves between two runs, done with plain git and the file system as
 * a crashed git command, an agent or a person would leave them. Each returns one line saying what
 * it did (or why it did nothing: no agent worktree exists yet), for the trial's log.
 */

/** Older than the stale-lock age (10 s), so the engine may treat the lock as stale. */
const STALE_AGE_MS = 60_000;

async function staleLock(path: string): Promise<string> {
  await writeFile(path, '');
  const old = new Date(Date.now() - STALE_AGE_MS);
  await utimes(path, old, old);
  return `left a stale ${path}`;
}

/** The agent worktrees on disk, sorted, so a pick in [0, 1) names the same one on a replay. */
async function agentWorktrees(sb: Sandbox): Promise<string[]> {
  if (!existsSync(sb.worktreeRoot)) return [];
  return (await readdir(sb.worktreeRoot)).sort();
}

const AGENT = ['-c', 'user.name=Scripted Agent', '-c', 'user.email=scripted-agent@localhost'];
const PERSON = ['-c', 'user.name=A Person', '-c', 'user.email=person@localhost'];

function firstLine(e: unknown): string {
  const m = e instanceof Error ? ((e as { stderr?: string }).stderr ?? e.message) : String(e);
  return m.trim().split('\n')[0] ?? '';
}

function choose<T>(xs: T[], pick: number): T | undefined {
  return xs[Math.min(xs.length - 1, Math.floor(pick * xs.length))];
}

/** An agent worktree on disk, one whose agent is at work when there is one: where a fault matters most. */
async function pickAgent(sb: Sandbox, pick: number): Promise<{ name: string | undefined; state: PipelineState }> {
  const state = await readState(sb.dir);
  const all = await agentWorktrees(sb);
  const working = all.filter((n) => state.agents[n]?.status === 'working');
  return { name: choose(working.length ? working : all, pick), state };
}

export async function applyGitFault(sb: Sandbox, fault: GitFault, serial: number): Promise<string> {
  switch (fault.kind) {
    case 'stale-index-lock':
      return staleLock(join(sb.dir, '.git', 'index.lock'));
    case 'stale-ref-lock':
      return staleLock(join(sb.dir, '.git', 'refs', 'heads', 'main.lock'));
    case 'human-commit': {
      const file = join(sb.dir, 'human', `note-${serial}.md`);
      await mkdir(join(sb.dir, 'human'), { recursive: true });
      await writeFile(file, `A person's note ${serial}.\n`);
      try {
        await git(sb.dir, 'add', '--', file);
        await git(sb.dir, ...PERSON, 'commit', '-q', '--no-verify', '-m', `A person's note ${serial}`, '--', file);
      } catch (e) {
        // A lock an earlier fault left refuses the person's commit too, as it would refuse anyone's.
        await rm(file, { force: true });
        await git(sb.dir, 'reset', '-q', '--', file).catch(() => undefined);
        return `could not commit as a person: ${firstLine(e)}`;
      }
      return `a person committed human/note-${serial}.md on main`;
    }
    case 'deleted-worktree': {
      const name = choose(await agentWorktrees(sb), fault.agentPick);
      if (!name) return 'no agent worktree to delete yet';
      await rm(join(sb.worktreeRoot, name), { recursive: true, force: true });
      return `deleted the worktree directory of ${name}`;
    }
    case 'failing-hook': {
      // Hooks live in the common git dir: every agent worktree runs this one.
      const count = join(sb.dir, '.git', `soak-hook-${serial}`);
      const hook = join(sb.dir, '.git', 'hooks', 'pre-commit');
      await mkdir(dirname(hook), { recursive: true });
      await writeFile(
        hook,
        [
          '#!/bin/sh',
          `# Refuses ${fault.times} commit(s), then lets them through.`,
          `n=$(cat '${count}' 2>/dev/null || echo 0)`,
          `if [ "$n" -lt ${fault.times} ]; then`,
          `  echo $((n + 1)) > '${count}'`,
          `  echo "pre-commit: refused by a failing check ($((n + 1)) of ${fault.times})" >&2`,
          '  exit 1',
          'fi',
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
      return `installed a pre-commit hook that refuses the next ${fault.times} commit(s)`;
    }
    case 'agent-git-killed': {
      const { name } = await pickAgent(sb, fault.agentPick);
      const gitDir = join(sb.dir, '.git', 'worktrees', name ?? '');
      if (!name || !existsSync(gitDir)) return 'no registered agent worktree to leave a lock in yet';
      const leftover = `src/killed-agent-${serial}.js`;
      await mkdir(join(sb.worktreeRoot, name, 'src'), { recursive: true });
      await writeFile(join(sb.worktreeRoot, name, leftover), `// written before the agent was killed (${serial})\n`);
      await writeFile(join(gitDir, 'index.lock'), '');
      return `left ${leftover} and a fresh .git/worktrees/${name}/index.lock, as an agent killed in git add would`;
    }
    case 'detached-head': {
      const { name, state } = await pickAgent(sb, fault.agentPick);
      if (!name) return 'no agent worktree to detach yet';
      const wt = join(sb.worktreeRoot, name);
      // A lock a killed agent's git left in the worktree refuses the checkout, as it would a person's.
      const failed = await git(wt, 'checkout', '-q', '--detach').then(
        () => null,
        (e: unknown) => firstLine(e),
      );
      if (failed !== null) return `could not detach ${name}: ${failed}`;
      const task = state.agents[name]?.current_task;
      if (!fault.commit || !task) return `detached HEAD in ${name}`;
      // The agent's own work, committed where no branch follows it: it must not end unreachable.
      const rel = `src/${task.toLowerCase()}-detached-${serial}.js`;
      await mkdir(join(wt, 'src'), { recursive: true });
      await writeFile(join(wt, rel), `// work committed on a detached HEAD (${serial})\n`);
      try {
        await git(wt, 'add', '--', rel);
        await git(
          wt,
          ...AGENT,
          'commit',
          '-q',
          '--no-verify',
          '-m',
          `${task} detached: work on a detached HEAD (${serial})`,
        );
      } catch (e) {
        return `detached HEAD in ${name}; could not commit on it: ${firstLine(e)}`;
      }
      return `detached HEAD in ${name} and committed ${rel} for ${task} on it`;
    }
  }
}
