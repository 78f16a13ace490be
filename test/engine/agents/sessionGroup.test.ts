import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { AgentPriority } from '../../../src/engine/agents/agentPriority';
import { resolveCommand } from '../../../src/engine/agents/commandTemplate';
import { ProcessRunner } from '../../../src/engine/agents/processRunner';
import { ShellCheckRunner } from '../../../src/engine/agents/shellCheckRunner';
import { until, within } from '../../support/waiting';
import { autogroupOf, lowerSessionGroup, parseAutogroup } from '../../../src/engine/agents/sessionGroup';

/**
 * With Linux's autogroups, a process that starts a session of its own (a terminal's shell, a
 * detached child) is a scheduling group of its own, which niceness inside it does not lower against
 * the editor's group: the agent's group gets the agents' niceness itself. Real processes, real
 * /proc files; skipped where the kernel has no autogroups.
 */

/** The group as the engine reads it: a CI runner's job is often in the kernel's default group. */
const groupOf = autogroupOf;

const autogroups = process.platform === 'linux' && existsSync('/proc/self/autogroup');
const skip = autogroups ? false : 'no autogroups here (/proc/self/autogroup): nothing to lower';

/** A sleeping child, in a session (and so a group) of its own when `detached`; killed after the test. */
async function sleeper(t: TestContext, detached: boolean): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['30'], { detached, stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const pid = child.pid;
  assert.ok(pid !== undefined, 'sleep started');
  // A detached child starts its session before its exec, which spawn() waits for: its group is
  // its own by now.
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return Object.assign(child, { pid });
}

void describe('the session group of an agent', { skip }, () => {
  void test("a process in a session of its own gets the engine's group's niceness plus the setting", async (t) => {
    const own = (await groupOf('self'))!;
    const child = await sleeper(t, true);
    const before = (await groupOf(child.pid))!;
    assert.notEqual(before.id, own.id, 'a detached child is a group of its own');
    assert.equal(await lowerSessionGroup(child.pid, 7), undefined);
    assert.deepEqual(await groupOf(child.pid), { id: before.id, nice: Math.min(19, own.nice + 7) });
    assert.deepEqual(await groupOf('self'), own, "the engine's own group is as it was");
  });

  void test("a process in the engine's own group leaves the group as it is", async (t) => {
    const own = (await groupOf('self'))!;
    const child = await sleeper(t, false);
    assert.equal((await groupOf(child.pid))!.id, own.id, 'a child that is not detached shares the group');
    assert.equal(await lowerSessionGroup(child.pid, 10), undefined);
    assert.deepEqual(await groupOf('self'), own, 'not lowered: the engine and the editor are in it');
  });

  void test('a group already lower is never raised, and a setting of 0 changes nothing', async (t) => {
    const own = (await groupOf('self'))!;
    const child = await sleeper(t, true);
    await lowerSessionGroup(child.pid, 12);
    assert.equal(await lowerSessionGroup(child.pid, 3), undefined);
    assert.equal((await groupOf(child.pid))!.nice, Math.min(19, own.nice + 12));
    const other = await sleeper(t, true);
    const before = (await groupOf(other.pid))!;
    assert.equal(await lowerSessionGroup(other.pid, 0), undefined);
    assert.deepEqual(await groupOf(other.pid), before);
  });

  void test('a process already gone: nothing to do, nothing thrown', async (t) => {
    const child = await sleeper(t, true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(await lowerSessionGroup(child.pid, 10), undefined);
  });

  void test("AgentPriority.apply lowers a terminal shell's group with the shell, and the agent's log stays quiet", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-session-group-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const own = (await groupOf('self'))!;
    // A shell that leads its own session, as a terminal's does.
    const shell = await sleeper(t, true);
    const logFile = join(dir, 'logs', 'agent.log');
    await new AgentPriority(10).apply(shell.pid, 'implementer', logFile);
    // The group follows in the background, soon after.
    await until(
      'the shell group lowered',
      10_000,
      async () => (await groupOf(shell.pid))?.nice === Math.min(19, own.nice + 10),
    );
    assert.equal(await readFile(logFile, 'utf8').catch(() => ''), '', 'nothing to say in the log');
  });

  void test("the process runner's agent, detached through nice, gets its group lowered too", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-session-group-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const worktree = join(dir, 'wt');
    await mkdir(worktree, { recursive: true });
    const taskFile = join(worktree, 'task.md');
    await writeFile(taskFile, '# TASK-001: the task\n');
    const runner = new ProcessRunner(join(dir, 'run'), { niceness: 6 });
    t.after(() => runner.dispose());
    const own = (await groupOf('self'))!;
    const h = await runner.start({
      agentId: 'implementer',
      taskId: 'TASK-001',
      attempt: 1,
      role: 'implementer',
      worktree,
      taskFile,
      command: resolveCommand(
        'sleep 30',
        { taskFile, taskId: 'TASK-001', worktree, role: 'implementer' },
        { scriptedAgent: '' },
      ),
      logFile: join(dir, 'logs', 'implementer.log'),
    });
    t.after(() => h.stop());
    assert.ok(h.pid !== undefined);
    // Lowered in the background, soon after the start.
    const group = await until('the agent in a group of its own, lowered', 10_000, async () => {
      const g = await groupOf(h.pid!);
      return g && g.id !== own.id && g.nice === Math.min(19, own.nice + 6) ? g : undefined;
    });
    assert.notEqual(group.id, own.id);
    await h.stop();
    await within('the agent ending', 20_000, h.exited);
  });

  void test("a stage check's group gets the agents' niceness", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-session-group-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const own = (await groupOf('self'))!;
    const want = Math.min(19, own.nice + 4);
    // The check waits (at most 10 s) for its group's niceness, which is set just after its spawn.
    const r = await new ShellCheckRunner({ niceness: 4 }).run({
      command: `for i in $(seq 200); do grep -q "nice ${want}$" /proc/self/autogroup && break; sleep 0.05; done; cat /proc/self/autogroup > group.txt`,
      cwd: dir,
      env: {},
      timeoutMs: 20_000,
      evidenceFile: join(dir, 'evidence', 'check.log'),
      taskId: 'TASK-001',
      attempt: 1,
    });
    assert.ok(r.passed);
    const text = await readFile(join(dir, 'group.txt'), 'utf8');
    assert.match(text, new RegExp(`nice ${want}\\n$`));
    assert.doesNotMatch(text, new RegExp(`^/autogroup-${own.id} `), 'a group of its own');
  });
});

void describe('reading /proc/<pid>/autogroup', () => {
  void test('a group of its own: its number and niceness', () => {
    assert.deepEqual(
      parseAutogroup('/autogroup-136915 nice 3\n', () => 99),
      { id: '136915', nice: 3 },
    );
  });

  void test("an empty file is the kernel's default group, at the process's own niceness", () => {
    // A process whose ancestors never started a session (a CI job, a container's first process).
    assert.deepEqual(
      parseAutogroup('', () => 5),
      { id: 'default', nice: 5 },
    );
    assert.equal(
      parseAutogroup('', () => {
        throw new Error('ESRCH');
      }),
      undefined,
      'gone since the file was read',
    );
  });

  void test('no file, or text of another form: no group to speak of', () => {
    assert.equal(
      parseAutogroup(undefined, () => 0),
      undefined,
    );
    assert.equal(
      parseAutogroup('something else', () => 0),
      undefined,
    );
  });
});
