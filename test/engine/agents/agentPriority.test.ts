import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { AgentPriority } from '../../../src/engine/agents/agentPriority';
import { resolveCommand } from '../../../src/engine/agents/commandTemplate';
import { ProcessRunner } from '../../../src/engine/agents/processRunner';
import { ShellCheckRunner } from '../../../src/engine/agents/shellCheckRunner';
import { TmuxRunner } from '../../../src/engine/agents/tmuxRunner';
import { parseConfig } from '../../../src/engine/home/configFile';
import { isPipelineError } from '../../../src/engine/errors';
import type { AgentRunner, RunRequest } from '../../../src/engine/ports/agentRunner';
import { until, within } from '../../support/waiting';

/**
 * Agents run below the engine's CPU priority (`agentNiceness`): every runner gives the agent's
 * command the setting's niceness, and what the command starts inherits it. Real processes report
 * their own niceness: a node program (os.getPriority) and a shell it starts (`nice` prints the
 * niceness it runs at).
 */

const run = promisify(execFile);

/** What the agent's niceness should be: the engine's own plus the setting, at most 19. */
const expected = (niceness: number) => Math.min(19, getPriority() + niceness);

/** The agent's program: writes its own niceness and that of a shell it starts, then exits. */
const REPORTER = `
const { execFileSync } = require('node:child_process');
const { getPriority } = require('node:os');
const child = execFileSync('sh', ['-c', 'nice'], { encoding: 'utf8' }).trim();
require('node:fs').writeFileSync('priority.txt', getPriority() + ' ' + child + '\\n');
`;

interface Sandbox {
  dir: string;
  worktree: string;
  logFile: string;
  request(command: string, attempt?: number): RunRequest;
}

async function sandbox(t: TestContext): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-priority-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const worktree = join(dir, 'wt');
  await mkdir(worktree, { recursive: true });
  await writeFile(join(worktree, 'report.js'), REPORTER);
  const taskFile = join(worktree, 'task.md');
  await writeFile(taskFile, '# TASK-001: the task\n');
  const logFile = join(dir, 'logs', 'agents', 'implementer.log');
  return {
    dir,
    worktree,
    logFile,
    request: (command, attempt = 1) => ({
      agentId: 'implementer',
      taskId: 'TASK-001',
      attempt,
      role: 'implementer',
      worktree,
      taskFile,
      command: resolveCommand(
        command,
        { taskFile, taskId: 'TASK-001', worktree, role: 'implementer' },
        { scriptedAgent: '' },
      ),
      logFile,
    }),
  };
}

/** Runs the reporter through `runner` and gives the niceness it and its shell reported. */
async function reported(runner: AgentRunner, sb: Sandbox, attempt = 1): Promise<[number, number]> {
  const out = join(sb.worktree, 'priority.txt');
  await rm(out, { force: true });
  const h = await runner.start(sb.request('{node} report.js', attempt));
  const exit = await within('the reporter ending', 20_000, h.exited);
  assert.deepEqual([exit.code, exit.startError], [0, undefined], await readFile(sb.logFile, 'utf8').catch(() => ''));
  const text = await until('the reporter writing its niceness', 5_000, () =>
    readFile(out, 'utf8').then(
      (s) => (s.endsWith('\n') ? s : undefined),
      () => undefined,
    ),
  );
  const [self, child] = text.trim().split(' ').map(Number);
  return [self!, child!];
}

void describe('the process runner', () => {
  for (const niceness of [10, 3, 0])
    void test(`with agentNiceness ${niceness}, the agent and a shell it starts run at the engine's niceness + ${niceness}`, async (t) => {
      const sb = await sandbox(t);
      const runner = new ProcessRunner(join(sb.dir, 'run'), { niceness });
      t.after(() => runner.dispose());
      const want = expected(niceness);
      assert.deepEqual(await reported(runner, sb), [want, want]);
    });

  void test("a shell's first command, which it forks at once, runs at the agents' niceness too", async (t) => {
    const sb = await sandbox(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { niceness: 10 });
    t.after(() => runner.dispose());
    // Lowered only after the spawn, a shell this small has often forked `nice` already: every run counts.
    const seen: string[] = [];
    for (let attempt = 1; attempt <= 8; attempt++) {
      const h = await runner.start(sb.request(`sh -c "nice > first-${attempt}.txt"`, attempt));
      assert.equal((await within('the shell ending', 20_000, h.exited)).code, 0);
      seen.push((await readFile(join(sb.worktree, `first-${attempt}.txt`), 'utf8')).trim());
    }
    assert.deepEqual(seen, Array<string>(8).fill(String(expected(10))));
    assert.doesNotMatch(await readFile(sb.logFile, 'utf8').catch(() => ''), /nice/, 'nothing of nice in the log');
  });

  void test('a runner made without the setting uses its default, 10', async (t) => {
    const sb = await sandbox(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'));
    t.after(() => runner.dispose());
    assert.deepEqual(await reported(runner, sb), [expected(10), expected(10)]);
  });

  void test('a missing program is still "command not found: <program>"', async (t) => {
    const sb = await sandbox(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { niceness: 10 });
    t.after(() => runner.dispose());
    const h = await runner.start(sb.request('no-such-agent-program-x {taskFile}'));
    const exit = await within('the start failing', 20_000, h.exited);
    assert.equal(exit.startError, 'command not found: no-such-agent-program-x');
  });

  void test('a script whose interpreter is missing is still a start error, as Node reports it', async (t) => {
    const sb = await sandbox(t);
    await writeFile(join(sb.worktree, 'agent.sh'), '#!/no/such/interpreter\necho hi\n', { mode: 0o755 });
    const runner = new ProcessRunner(join(sb.dir, 'run'), { niceness: 10 });
    t.after(() => runner.dispose());
    const h = await runner.start(sb.request('./agent.sh {taskFile}'));
    const exit = await within('the start failing', 20_000, h.exited);
    assert.equal(exit.startError, 'command not found: ./agent.sh');
  });
});

void describe('the tmux runner', () => {
  const tmuxSandbox = async (t: TestContext, niceness: number) => {
    const sb = await sandbox(t);
    const runner = new TmuxRunner(join(sb.dir, 'run'), sb.dir, { niceness });
    t.after(() => runner.killSession());
    return { sb, runner };
  };

  for (const niceness of [10, 0])
    void test(`with agentNiceness ${niceness}, the command typed into the window and a shell it starts run at the engine's niceness + ${niceness}`, async (t) => {
      if (!(await TmuxRunner.available())) return t.skip('tmux is not installed (apt-get install tmux)');
      const { sb, runner } = await tmuxSandbox(t, niceness);
      const want = expected(niceness);
      assert.deepEqual(await reported(runner, sb), [want, want], 'in a new window');
      assert.deepEqual(await reported(runner, sb, 2), [want, want], 'in the same window again');
    });

  void test("a window made before the runner (a previous run's) gets the agents' niceness before its command", async (t) => {
    if (!(await TmuxRunner.available())) return t.skip('tmux is not installed (apt-get install tmux)');
    const { sb, runner } = await tmuxSandbox(t, 7);
    await run('tmux', ['new-session', '-d', '-s', runner.session, '-n', 'pipeline']);
    await run('tmux', ['new-window', '-d', '-t', runner.session, '-n', 'implementer', 'bash --noprofile --norc']);
    assert.deepEqual(await reported(runner, sb), [expected(7), expected(7)]);
  });

  void test('a missing program is still "command not found: <program>"', async (t) => {
    if (!(await TmuxRunner.available())) return t.skip('tmux is not installed (apt-get install tmux)');
    const { sb, runner } = await tmuxSandbox(t, 10);
    const h = await runner.start(sb.request('no-such-agent-program-x {taskFile}'));
    const exit = await within('the command ending', 20_000, h.exited);
    assert.equal(exit.startError, 'command not found: no-such-agent-program-x');
  });
});

void test("a stage check and what it starts run at the agents' niceness", async (t) => {
  const sb = await sandbox(t);
  const evidenceFile = join(sb.dir, 'evidence', 'check.log');
  const r = await new ShellCheckRunner({ niceness: 4 }).run({
    command: 'nice > check-nice.txt && sh -c nice >> check-nice.txt',
    cwd: sb.worktree,
    env: {},
    timeoutMs: 20_000,
    evidenceFile,
    taskId: 'TASK-001',
    attempt: 1,
  });
  assert.ok(r.passed, await readFile(evidenceFile, 'utf8'));
  const want = expected(4);
  assert.equal(await readFile(join(sb.worktree, 'check-nice.txt'), 'utf8'), `${want}\n${want}\n`);
});

void describe('a priority that cannot be set', () => {
  void test("a process already gone: the agent's log says so once, and nothing throws", async (t) => {
    const sb = await sandbox(t);
    const gone = spawn(process.execPath, ['-e', '']);
    const pid = gone.pid!;
    // Reaped once 'exit' has come: the pid names no process any more.
    await within('the process ending', 20_000, new Promise((r) => gone.once('exit', r)));
    const priority = new AgentPriority(10);
    await priority.apply(pid, 'implementer', sb.logFile);
    await priority.apply(pid, 'implementer', sb.logFile);
    const log = await readFile(sb.logFile, 'utf8');
    assert.equal(log.match(/could not be given niceness/g)?.length, 1, log);
    assert.match(log, new RegExp(`niceness ${expected(10)} \\(ESRCH\\); it runs at the priority it had`));
  });

  void test('a niceness that may not be lowered back without privilege (EACCES) is said, not thrown', async (t) => {
    if (process.getuid?.() === 0) return t.skip('root may lower any niceness: run as another user to see EACCES');
    if (process.platform === 'win32') return t.skip('POSIX niceness rules');
    const sb = await sandbox(t);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    t.after(() => sleeper.kill());
    const pid = sleeper.pid!;
    setPriority(pid, 19);
    await new AgentPriority(0).apply(pid, 'implementer', sb.logFile);
    assert.match(await readFile(sb.logFile, 'utf8'), /\(EACCES\); it runs at the priority it had/);
    assert.equal(getPriority(pid), 19);
  });
});

void describe('the agentNiceness setting', () => {
  const FILE = '/repo/.pipeline/config.json';

  void test('defaults to 10 and takes 0 to 19', () => {
    assert.equal(parseConfig('{}', FILE).agentNiceness, 10);
    assert.equal(parseConfig('{"agentNiceness": 0}', FILE).agentNiceness, 0);
    assert.equal(parseConfig('{"agentNiceness": 19}', FILE).agentNiceness, 19);
  });

  for (const [value, says] of [
    ['20', /agentNiceness: must be 19 \(the lowest priority\) or less \(line 1, column 2\)/],
    ['-1', /agentNiceness: must be 0 \(the engine's own priority\) or more/],
    ['2.5', /agentNiceness: must be a whole number/],
  ] as const)
    void test(`${value} is refused with the file, the place and the fix`, () => {
      assert.throws(
        () => parseConfig(`{"agentNiceness": ${value}}`, FILE),
        (e: unknown) => {
          assert.ok(isPipelineError(e));
          assert.equal(e.code, 'invalid-config');
          assert.equal(e.details.file, FILE);
          assert.equal(e.details.where, 'agentNiceness');
          assert.match(e.details.fix ?? '', /delete the key to use its default/);
          assert.match(e.message, says);
          assert.ok(e.message.startsWith(FILE), e.message);
          return true;
        },
      );
    });
});
