import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMPLETED_LINE } from '../../../src/engine/agents/completionMarker';
import { Pipeline } from '../../../src/engine/pipeline';
import type { TaskSpec } from '../../../src/engine/model/schema';
import {
  assertAllMerged,
  assertGitHealthy,
  entries,
  git,
  requireBuild,
  runUntilIdle,
  sandbox,
  type Sandbox,
} from './monitorKit';

/**
 * A real merge conflict: two tasks without declared paths (so the scheduler cannot keep them apart)
 * whose implementers both append a line to the same file. The one merged second conflicts, goes
 * back to implementation with the file named, and either merges once its implementer resolves the
 * conflict or, when nobody resolves it, ends blocked with the file named: never a loop.
 */

requireBuild();

const TASKS: TaskSpec[] = [
  { id: 'TASK-001', title: 'One' },
  { id: 'TASK-002', title: 'Two' },
];

const TWO_PER_ROLE: Array<[string, string]> = [
  ['architect', 'architect'],
  ['architect-2', 'architect'],
  ['tester', 'tester'],
  ['tester-2', 'tester'],
];

/**
 * An implementer that appends its task id to shared.txt and commits, then waits until the other
 * task's implementer did the same (so both branches change the file before either merges, and the
 * conflict is certain). On a rework with a conflict it merges the target and, with `resolve`, keeps
 * both sides; without, it leaves the branch as it is (an agent that ignores the conflict).
 */
const IMPLEMENTER = `const fs = require('fs'), path = require('path'), { execFileSync } = require('child_process');
const [file, mode, barrier] = process.argv.slice(2);
const text = fs.readFileSync(file, 'utf8');
const task = /task=(\\S+)/.exec(text)[1];
const git = (...a) => execFileSync('git', ['-c', 'user.name=Implementer', '-c', 'user.email=impl@localhost', ...a], { encoding: 'utf8' });
const conflict = /## Merge conflict to resolve\\n\\nMerging into \`([^\`]+)\` conflicted in: (.*)\\. /.exec(text);
if (!conflict) {
  fs.appendFileSync('shared.txt', task + ' was here\\n');
  git('add', 'shared.txt');
  git('commit', '-q', '-m', task + ': shared line');
  fs.mkdirSync(barrier, { recursive: true });
  fs.writeFileSync(path.join(barrier, task), '');
  const end = Date.now() + 20000;
  while (fs.readdirSync(barrier).length < 2 && Date.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
} else if (mode === 'resolve') {
  try {
    git('merge', '--no-edit', '-q', conflict[1]);
  } catch {
    for (const f of git('diff', '--name-only', '--diff-filter=U').split('\\n').filter(Boolean)) {
      const kept = fs.readFileSync(f, 'utf8').split('\\n').filter((l) => !/^(<<<<<<<|=======|>>>>>>>)/.test(l));
      fs.writeFileSync(f, kept.join('\\n'));
      git('add', '--', f);
    }
    git('commit', '-q', '--no-edit');
  }
}
fs.appendFileSync(file, '\\n${COMPLETED_LINE}\\n');
`;

async function conflictSandbox(mode: 'resolve' | 'ignore'): Promise<Sandbox> {
  const sb = await sandbox({ tasks: TASKS, agents: [...TWO_PER_ROLE, ['supervisor', 'supervisor']] });
  const script = join(sb.base, 'implementer.js');
  await writeFile(script, IMPLEMENTER);
  const p = await Pipeline.open({ cwd: sb.dir, role: 'lead' });
  try {
    for (const id of ['implementer', 'implementer-2'])
      await p.addAgent({
        id,
        role: 'implementer',
        command: `{node} ${script} {taskFile} ${mode} ${join(sb.base, 'barrier')}`,
      });
  } finally {
    await p.close();
  }
  return sb;
}

/** The task files an agent was given for a task, oldest first. */
async function taskFiles(sb: Sandbox, taskId: string): Promise<string[]> {
  const out: Array<[number, string]> = [];
  for (const agent of await readdir(sb.worktreeRoot)) {
    const dir = join(sb.worktreeRoot, agent, '.pipeline-task');
    for (const n of await readdir(dir).catch(() => [])) {
      const m = /^(.+)\.attempt-(\d+)\.md$/.exec(n);
      if (m?.[1] === taskId) out.push([Number(m[2]), await readFile(join(dir, n), 'utf8')]);
    }
  }
  return out.sort((a, b) => a[0] - b[0]).map((x) => x[1]);
}

void test('a merge conflict goes back to implementation with the file named, and merges once the implementer resolves it', async () => {
  const sb = await conflictSandbox('resolve');
  try {
    const r = await runUntilIdle(sb.dir);
    assert.deepEqual([r.idle.blocked, r.idle.waiting], [[], []]);
    await assertAllMerged(sb.dir, r.state);
    const conflicted = Object.values(r.state.tasks).filter((t) => entries(t, 'conflict').length > 0);
    assert.equal(conflicted.length, 1, 'exactly one of the two merges conflicted');
    const t = conflicted[0]!;
    assert.deepEqual(
      entries(t, 'conflict').map((h) => [h.stage, h.note]),
      [['implementation', 'merge conflict in shared.txt']],
    );
    const after = t.history.slice(t.history.findIndex((h) => h.event === 'conflict'));
    assert.deepEqual(
      after.filter((h) => h.event === 'assign').map((h) => h.stage),
      ['implementation', 'supervisor'],
      'back to implementation, reviewed again, merged',
    );
    const files = await taskFiles(sb, t.id);
    const rework = files.filter((f) => f.includes('## Merge conflict to resolve'));
    assert.ok(rework.length >= 1, 'a task file asked to resolve the conflict');
    assert.match(rework.at(-1)!, /conflicted in: `shared\.txt`/);
    // Nothing lost: both lines are on main, without conflict markers.
    const shared = await git(sb.dir, 'show', 'main:shared.txt');
    assert.deepEqual(shared.split('\n').sort(), ['TASK-001 was here', 'TASK-002 was here']);
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('a conflict nobody resolves ends blocked, naming the file, after a bounded number of rounds; nothing is lost', async () => {
  const sb = await conflictSandbox('ignore');
  try {
    const r = await runUntilIdle(sb.dir, { timeoutMs: 45_000 });
    const done = Object.values(r.state.tasks).filter((t) => t.status === 'done');
    const blocked = Object.values(r.state.tasks).filter((t) => t.status === 'blocked');
    assert.equal(done.length, 1);
    assert.equal(blocked.length, 1);
    const t = blocked[0]!;
    assert.deepEqual(r.idle.blocked, [t.id]);
    assert.match(t.blocked_reason!, /shared\.txt/);
    assert.ok(entries(t, 'conflict').length >= 1);
    assert.ok(
      entries(t, 'conflict').length <= 3,
      `rounds of rework are bounded by retry.maxAttempts (${entries(t, 'conflict').length})`,
    );
    await assertAllMerged(sb.dir, { ...r.state, tasks: { [done[0]!.id]: done[0]! } });
    // Nothing lost: main has the merged task's line, the blocked task's branch still has its own.
    assert.equal(await git(sb.dir, 'show', 'main:shared.txt'), `${done[0]!.id} was here`);
    assert.match(await git(sb.dir, 'show', `${t.branch}:shared.txt`), new RegExp(`${t.id} was here`));
    assert.match(await git(sb.dir, 'log', '--format=%s', t.branch), new RegExp(`${t.id}: shared line`));
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});
