import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { resolveCommand } from '../../../src/engine/agents/commandTemplate';
import { ProcessRunner } from '../../../src/engine/agents/processRunner';
import { gitEnvironment } from '../../../src/engine/git/gitEnv';
import { readySpawnServer, spawnGit } from '../../../src/engine/git/gitSpawner';
import { SpawnServer } from '../../../src/engine/git/gitSpawnServer';
import type { RunExit, RunRequest } from '../../../src/engine/ports/agentRunner';
import { agentRunnerConformance, shellCommand } from '../ports/agentRunner.conformance';
import { until, within } from '../../support/waiting';

/**
 * Agents' commands started on the spawn server (gitSpawnServer.ts) rather than from the engine:
 * the AgentRunner contract holds as it does for commands the engine starts itself; the command is
 * the server's child in a group of its own, its output appended to the log; exit codes, signals,
 * start errors and niceness are what the engine-started command gives; stop() ends its whole
 * group; and a command outlives the server, its exit still reported when the server is gone.
 * Real processes throughout, read from /proc.
 */

const linux = process.platform === 'linux';

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  nice: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // Fields after the command name (which may hold spaces): state, ppid, pgrp, … nice is field 19.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), nice: Number(f[16]) };
}

async function comm(pid: number): Promise<string | undefined> {
  return (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => undefined))?.trim();
}

/** The live (not zombie) processes of process group `pgrp`. */
async function groupMembers(pgrp: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  const members: number[] = [];
  for (const pid of pids) {
    const s = await procStat(pid);
    if (s && s.pgrp === pgrp && s.state !== 'Z') members.push(pid);
  }
  return members;
}

interface Sandbox {
  dir: string;
  worktree: string;
  logFile: string;
  request(command: string, attempt?: number, env?: Record<string, string>): RunRequest;
}

async function sandbox(t: TestContext): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-runner-server-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const worktree = join(dir, 'wt');
  await mkdir(worktree, { recursive: true });
  const taskFile = join(worktree, 'task.md');
  await writeFile(taskFile, '# TASK-001: the task\n');
  const logFile = join(dir, 'logs', 'agents', 'implementer.log');
  return {
    dir,
    worktree,
    logFile,
    request: (command, attempt = 1, env = {}) => {
      const resolved = resolveCommand(
        command,
        { taskFile, taskId: 'TASK-001', worktree, role: 'implementer' },
        { scriptedAgent: '' },
      );
      return {
        agentId: 'implementer',
        taskId: 'TASK-001',
        attempt,
        role: 'implementer',
        worktree,
        taskFile,
        command: { ...resolved, env: { ...resolved.env, ...env } },
        logFile,
      };
    },
  };
}

const exitOf = (p: Promise<RunExit>) => within('the command ending', 20_000, p);

/** A server of its own for each test that kills it; the others share one. */
async function readyServer(t?: TestContext): Promise<SpawnServer> {
  const s = new SpawnServer();
  if (t) t.after(() => s.alive && s.stop());
  assert.equal(await within('the spawn server listening', 30_000, s.ready), true);
  return s;
}

let shared: SpawnServer;
before(async () => {
  shared = await readyServer();
});
after(() => shared.stop());

agentRunnerConformance('ProcessRunner on the spawn server', (dir) => {
  const runDir = join(dir, 'run');
  return Promise.resolve({
    runner: new ProcessRunner(runDir, { spawnServer: () => shared }),
    command: (_name, b) => shellCommand(b),
    restarted: () => new ProcessRunner(runDir, { spawnServer: () => shared }),
    cleanup: () => Promise.resolve(),
  });
});

void describe('an agent started on the spawn server', () => {
  void test("is the server's child, leads a group of its own, and appends both streams to the log", async (t) => {
    if (!linux) return t.skip('reads /proc');
    const sb = await sandbox(t);
    await mkdir(join(sb.dir, 'logs', 'agents'), { recursive: true });
    await writeFile(sb.logFile, 'an earlier attempt\n');
    const runner = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => shared });
    t.after(() => runner.dispose());
    const h = await runner.start(sb.request(`sh -c "echo out-line; echo err-line >&2; exec sleep 60"`));
    assert.ok(h.pid !== undefined);
    const stat = await procStat(h.pid);
    assert.equal(stat?.ppid, shared.pid, "the agent's parent is the server");
    assert.notEqual(stat?.ppid, process.pid, 'not the engine');
    assert.equal(stat?.pgrp, h.pid, 'it leads its own process group');
    const log = await until('both lines in the log', 10_000, async () => {
      const text = await readFile(sb.logFile, 'utf8');
      return /out-line/.test(text) && /err-line/.test(text) ? text : undefined;
    });
    assert.ok(log.startsWith('an earlier attempt\n'), `appended to, not overwritten: ${log}`);
    await within('stop', 20_000, h.stop());
    const e = await exitOf(h.exited);
    assert.deepEqual([e.code, e.signal], [null, 'SIGTERM']);
  });

  void test('reports exit codes and signals as a command the engine starts does', async (t) => {
    const sb = await sandbox(t);
    const onServer = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => shared });
    const here = new ProcessRunner(join(sb.dir, 'run-here'), { spawnServer: () => undefined });
    t.after(() => Promise.all([onServer.dispose(), here.dispose()]));
    for (const [line, want] of [
      ['exit 0', [0, null]],
      ['exit 3', [3, null]],
      ['kill -USR1 $$', [null, 'SIGUSR1']],
    ] as const) {
      const got = await exitOf((await onServer.start(sb.request(`sh -c "${line}"`))).exited);
      const direct = await exitOf((await here.start(sb.request(`sh -c "${line}"`))).exited);
      assert.deepEqual([got.code, got.signal, got.startError], [...want, undefined], line);
      assert.deepEqual(got, direct, `${line}: the same as started from the engine`);
    }
  });

  void test('gives the same start errors as a command the engine starts', async (t) => {
    const sb = await sandbox(t);
    await writeFile(join(sb.worktree, 'agent.sh'), '#!/no/such/interpreter\necho hi\n', { mode: 0o755 });
    await writeFile(join(sb.worktree, 'not-executable.sh'), 'echo hi\n', { mode: 0o644 });
    const onServer = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => shared });
    const here = new ProcessRunner(join(sb.dir, 'run-here'), { spawnServer: () => undefined });
    t.after(() => Promise.all([onServer.dispose(), here.dispose()]));
    for (const command of ['no-such-agent-program-x {taskFile}', './agent.sh', './not-executable.sh']) {
      const h = await onServer.start(sb.request(command));
      assert.equal(h.pid, undefined, command);
      const got = await exitOf(h.exited);
      const direct = await exitOf((await here.start(sb.request(command))).exited);
      assert.ok(got.startError, `${command}: a start error`);
      assert.deepEqual(got, direct, `${command}: the same as started from the engine`);
    }
    const missing = await exitOf((await onServer.start(sb.request('no-such-agent-program-x'))).exited);
    assert.equal(missing.startError, 'command not found: no-such-agent-program-x');
  });

  void test('a log file that cannot be opened fails the start as it does from the engine', async (t) => {
    const sb = await sandbox(t);
    const onServer = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => shared });
    const here = new ProcessRunner(join(sb.dir, 'run-here'), { spawnServer: () => undefined });
    t.after(() => Promise.all([onServer.dispose(), here.dispose()]));
    // A directory where the log file should be.
    await mkdir(sb.logFile, { recursive: true });
    const direct = await here.start(sb.request('sh -c "exit 0"')).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    const got = await onServer.start(sb.request('sh -c "exit 0"')).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    assert.equal(direct?.code, 'EISDIR');
    assert.deepEqual([got?.code, got?.message], [direct.code, direct.message]);
  });

  void test('stop() ends the whole group: the command and what it started', async (t) => {
    if (!linux) return t.skip('reads /proc');
    const sb = await sandbox(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => shared });
    t.after(() => runner.dispose());
    const h = await runner.start(sb.request(`sh -c "sleep 60 & sleep 60 & echo started > started.txt; wait"`));
    const pid = h.pid!;
    await until('the command and its two children running', 10_000, async () => {
      const members = await groupMembers(pid);
      return existsSync(join(sb.worktree, 'started.txt')) && members.length >= 3 ? members : undefined;
    });
    await within('stop', 20_000, h.stop());
    const e = await exitOf(h.exited);
    assert.notEqual(e.code, 0);
    await until('nothing of the group left', 10_000, async () => (await groupMembers(pid)).length === 0);
  });

  void test('outlives a killed server, and its exit is still reported (without a code) once it ends', async (t) => {
    if (!linux) return t.skip('reads /proc');
    const sb = await sandbox(t);
    const server = await readyServer(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => server });
    t.after(() => runner.dispose());
    const h = await runner.start(
      sb.request(`sh -c "while [ ! -e go ]; do sleep 0.05; done; echo after-the-server; exit 5"`),
    );
    const pid = h.pid!;
    assert.equal((await procStat(pid))?.ppid, server.pid);
    let settled = false;
    void h.exited.then(() => (settled = true));
    process.kill(server.pid!, 'SIGKILL');
    await until('the killed server seen to be gone', 20_000, () => !server.alive);
    const orphan = await procStat(pid);
    assert.ok(orphan && orphan.state !== 'Z', 'the agent still runs');
    assert.notEqual(orphan.ppid, server.pid);
    assert.equal(settled, false, 'its exit is not reported while it runs');
    await writeFile(join(sb.worktree, 'go'), '');
    const e = await exitOf(h.exited);
    assert.deepEqual([e.code, e.signal, e.startError], [null, null, undefined]);
    assert.match(await readFile(sb.logFile, 'utf8'), /after-the-server/, 'its output still reaches the log');
    assert.equal(existsSync(join(sb.dir, 'run', 'implementer.pid.json')), false, 'its pid file is removed');
  });

  void test('stop() still ends a command whose server was killed', async (t) => {
    if (!linux) return t.skip('reads /proc');
    const sb = await sandbox(t);
    const server = await readyServer(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { spawnServer: () => server });
    t.after(() => runner.dispose());
    const h = await runner.start(sb.request('sh -c "sleep 60 & wait"'));
    const pid = h.pid!;
    await until('the command and its child running', 10_000, async () => (await groupMembers(pid)).length >= 2);
    process.kill(server.pid!, 'SIGKILL');
    await until('the killed server seen to be gone', 20_000, () => !server.alive);
    await within('stop', 20_000, h.stop());
    await exitOf(h.exited);
    await until('nothing of the group left', 10_000, async () => (await groupMembers(pid)).length === 0);
  });

  void test("runs at the agents' niceness, through nice and when lowered after the start", async (t) => {
    if (!linux) return t.skip('reads /proc');
    const sb = await sandbox(t);
    const runner = new ProcessRunner(join(sb.dir, 'run'), { niceness: 7, spawnServer: () => shared });
    t.after(() => runner.dispose());
    const want = Math.min(19, getPriority() + 7);
    const niced = await runner.start(sb.request('sleep 60'));
    t.after(() => niced.stop());
    assert.equal((await procStat(niced.pid!))?.ppid, shared.pid);
    // `nice` sets the niceness, then becomes the command (same pid): read once it has.
    await until('nice running the command', 10_000, async () => (await comm(niced.pid!)) === 'sleep');
    assert.equal((await procStat(niced.pid!))?.nice, want, 'started through nice');
    // A PATH without `nice`: the runner lowers the started process itself (lowerAfterSpawn).
    const bin = join(sb.dir, 'bin');
    await mkdir(bin);
    await symlink('/bin/sleep', join(bin, 'sleep'));
    const lowered = await runner.start(sb.request('sleep 60', 2, { PATH: bin }));
    t.after(() => lowered.stop());
    assert.equal((await procStat(lowered.pid!))?.ppid, shared.pid);
    assert.equal((await procStat(lowered.pid!))?.nice, want, 'lowered after its start');
  });
});

void test("by default, commands start from the engine until the git layer's spawn server listens, then on it", async (t) => {
  if (!linux) return t.skip('reads /proc');
  const sb = await sandbox(t);
  const runner = new ProcessRunner(join(sb.dir, 'run'));
  t.after(() => runner.dispose());
  const parentOf = async (attempt: number): Promise<number | undefined> => {
    const h = await runner.start(sb.request('sleep 60', attempt));
    try {
      return (await procStat(h.pid!))?.ppid;
    } finally {
      await h.stop();
    }
  };
  if (readySpawnServer() === undefined) assert.equal(await parentOf(1), process.pid, 'before: the engine');
  const env = gitEnvironment(true);
  const server = await until('the spawn server listening', 30_000, async () => {
    await spawnGit({ args: ['--version'], cwd: sb.dir, env, timeoutMs: 60_000 });
    return readySpawnServer();
  });
  assert.equal(await parentOf(2), server.pid, 'after: the server');
});
