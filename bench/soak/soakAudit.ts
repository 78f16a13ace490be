import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cleanEnv } from '../../test/engine/git/gitFixture';
import { assertGitHealthy, git, isAncestorOf, type Sandbox } from '../../test/engine/monitor/monitorKit';
import { DEFAULT_STAGES } from '../../src/engine/model/configSchema';
import { type PipelineState } from '../../src/engine/model/schema';

/**
 * What a soak trial ends with, read from git and the stored state after the last run: every
 * acknowledged task present and merged with each stage's commit on `main`, every merge the engine
 * reported still on `main`, no task merged twice, and no agent commit that no ref reaches.
 */

const run = promisify(execFile);

/** An agent's commit: its subject starts with the task's id (`TASK-004 implementation: …`). */
const AGENT_SUBJECT = /^TASK-\d+ /;

export interface Audit {
  /** Acknowledged tasks missing, a done task's stage commit or merge not on main, a reported merge gone. */
  lost: string[];
  /** A task merged more than once. */
  duplicated: string[];
  /** Agent commits no ref reaches (refs/pipeline/* included). */
  unreachable: string[];
  /** Tasks the last run did not finish (blocked, waiting, still in flight). */
  stuck: string[];
  /** git fsck, lock files or the worktree registry not as engineering.md wants them. */
  unhealthy: string[];
  /** Acknowledged tasks that ended merged with all their commits on main. */
  merged: Set<string>;
}

async function unreachableAgentCommits(dir: string): Promise<string[]> {
  const found = new Set<string>();
  // What git itself counts as unreachable; reflogs do not count as keeping anything.
  const { stdout } = await run('git', ['fsck', '--unreachable', '--no-reflogs', '--no-progress'], {
    cwd: dir,
    env: cleanEnv(),
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const m of stdout.matchAll(/^unreachable commit ([0-9a-f]{40})$/gm)) found.add(m[1] ?? '');
  // fsck counts each worktree's HEAD as a root: a commit only a detached HEAD holds is on no ref.
  const refs = (await git(dir, 'for-each-ref', '--format=%(objectname)')).split('\n').filter(Boolean);
  const porcelain = await git(dir, 'worktree', 'list', '--porcelain');
  for (const block of porcelain.split('\n\n')) {
    if (!/^detached$/m.test(block)) continue;
    const head = /^HEAD ([0-9a-f]{40})$/m.exec(block)?.[1];
    if (!head) continue;
    const only = await git(dir, 'rev-list', head, '--not', ...refs);
    for (const c of only.split('\n').filter(Boolean)) found.add(c);
  }
  const out: string[] = [];
  for (const c of found) {
    const subject = await git(dir, 'show', '-s', '--format=%s', c);
    if (AGENT_SUBJECT.test(subject)) out.push(`${c.slice(0, 10)} "${subject}"`);
  }
  return out.sort();
}

export async function auditTrial(
  sb: Sandbox,
  state: PipelineState,
  acknowledged: ReadonlySet<string>,
  reportedMerges: ReadonlyMap<string, string>,
): Promise<Audit> {
  const a: Audit = { lost: [], duplicated: [], unreachable: [], stuck: [], unhealthy: [], merged: new Set() };
  const subjects = (await git(sb.dir, 'log', '--format=%s', 'main')).split('\n');
  const firstParent = (await git(sb.dir, 'log', '--first-parent', '--format=%s', 'main')).split('\n');
  for (const id of acknowledged) {
    const t = state.tasks[id];
    if (!t) {
      a.lost.push(`${id}: acknowledged by \`pipeline task add\` but not in the state`);
      continue;
    }
    const merges = t.history.filter((h) => h.event === 'merged').length;
    const mergeCommits = firstParent.filter((s) => s.startsWith(`Merge pipeline/${id}:`)).length;
    if (merges > 1 || mergeCommits > 1)
      a.duplicated.push(`${id}: ${merges} merged entries, ${mergeCommits} merge commits on main`);
    if (t.status !== 'done') {
      a.stuck.push(`${id}: ${t.status} at ${t.stage}${t.blocked_reason ? ` (${t.blocked_reason})` : ''}`);
      continue;
    }
    let whole = true;
    if (!t.merged_commit || !(await isAncestorOf(sb.dir, t.merged_commit, 'main'))) {
      a.lost.push(`${id}: done but its merged commit ${t.merged_commit ?? '(none)'} is not on main`);
      whole = false;
    }
    for (const stage of DEFAULT_STAGES.map((s) => s.name)) {
      if (!subjects.some((s) => s.startsWith(`${id} ${stage}:`))) {
        a.lost.push(`${id}: done but no ${stage} commit on main`);
        whole = false;
      }
    }
    if (whole) a.merged.add(id);
  }
  const byTask = new Map<string, string[]>();
  for (const [commit, id] of reportedMerges) {
    byTask.set(id, [...(byTask.get(id) ?? []), commit]);
    if (!(await isAncestorOf(sb.dir, commit, 'main')))
      a.lost.push(`${id}: the merge ${commit.slice(0, 10)} a run reported is not on main`);
  }
  for (const [id, commits] of byTask)
    if (commits.length > 1) a.duplicated.push(`${id}: runs reported ${commits.length} merges`);
  a.unreachable = await unreachableAgentCommits(sb.dir);
  try {
    await assertGitHealthy(sb);
  } catch (e) {
    a.unhealthy.push((e as Error).message.split('\n').slice(0, 6).join(' '));
  }
  return a;
}
