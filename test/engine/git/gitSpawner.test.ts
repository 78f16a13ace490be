import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { gitEnvironment } from '../../../src/engine/git/gitEnv';
import type { SpawnRequest, SpawnResult } from '../../../src/engine/git/gitSpawnRun';
import { SpawnServer } from '../../../src/engine/git/gitSpawnServer';
import { gitParentPids, readySpawnServer, spawnGit } from '../../../src/engine/git/gitSpawner';
import { until, within } from '../../support/waiting';

/**
 * git processes started on worker threads or on the spawn server (gitSpawner.ts,
 * gitSpawnServer.ts): each request gets its own answer (many in flight at once), exit codes and both
 * streams come back intact, a directory that is gone is an error rather than a hang, and a silent
 * command is killed by its timeout. Every behaviour is checked on both ways of starting git; then
 * that a pipeline's commands move to the server, that its git processes are the server's children
 * (which the stale-lock check leaves out), and that an idle server keeps nobody alive.
 */

const env = gitEnvironment(true);

const server = new SpawnServer();
const transports: Array<[string, (r: SpawnRequest) => Promise<SpawnResult>]> = [
  ['spawnGit', spawnGit],
  ['the spawn server', (r) => server.run(r)],
];

for (const [how, spawnGit] of transports) {
  void test(`${how}: many commands in flight at once: each gets its own answer`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
    try {
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          spawnGit({ args: ['-c', `x.n=${i}`, 'config', 'x.n'], cwd: dir, env, timeoutMs: 60_000 }),
        ),
      );
      results.forEach((r, i) => {
        assert.equal(r.kind, 'exit');
        assert.deepEqual(r.kind === 'exit' && { code: r.exitCode, out: r.stdout }, { code: 0, out: `${i}\n` });
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void test(`${how}: a failing command: its exit code and stderr; a missing directory: an error`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
    try {
      const r = await spawnGit({ args: ['rev-parse', '--verify', 'nope'], cwd: dir, env, timeoutMs: 60_000 });
      assert.equal(r.kind, 'exit');
      assert.equal(r.kind === 'exit' && r.exitCode, 128);
      assert.match(r.kind === 'exit' ? r.stderr : '', /not a git repository/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const gone = await spawnGit({ args: ['status'], cwd: join(dir, 'gone'), env, timeoutMs: 60_000 });
    assert.equal(gone.kind, 'error');
    assert.equal(gone.kind === 'error' && gone.code, 'ENOENT');
  });

  void test(`${how}: a command that waits for input it never gets is killed after its timeout`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
    try {
      // `hash-object --stdin` reads stdin until it ends, which it never does.
      const r = await spawnGit({ args: ['hash-object', '--stdin'], cwd: dir, env, timeoutMs: 300 });
      assert.equal(r.kind, 'timeout');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

void test('the spawn server answers once it listens, and a stopped one fails its requests clearly', async () => {
  const s = new SpawnServer();
  assert.equal(await within('the spawn server listens', 30_000, s.ready), true);
  const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
  try {
    const r = await s.run({ args: ['--version'], cwd: dir, env, timeoutMs: 60_000 });
    assert.equal(r.kind, 'exit');
    assert.match(r.kind === 'exit' ? r.stdout : '', /^git version /);
    s.stop();
    await until('the stopped server is seen to be gone', 30_000, () => !s.alive);
    const after = await s.run({ args: ['--version'], cwd: dir, env, timeoutMs: 60_000 });
    assert.equal(after.kind, 'error');
    assert.match(after.kind === 'error' ? after.message : '', /git spawn server exited/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test("a pipeline's git commands move to the spawn server, whose children the stale-lock check leaves out; agents may start there too", async (t) => {
  if (process.platform !== 'linux') return t.skip('reads /proc');
  const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
  try {
    for (let i = 0; i < 10; i++) await spawnGit({ args: ['--version'], cwd: dir, env, timeoutMs: 60_000 });
    await until('the spawn server listens', 30_000, async () => {
      await spawnGit({ args: ['--version'], cwd: dir, env, timeoutMs: 60_000 });
      return gitParentPids().length === 2;
    });
    const serverPid = gitParentPids()[1];
    assert.equal(readySpawnServer()?.pid, serverPid, 'the server agents start on is the same');
    // A shell alias runs as git's child: $PPID is git, whose parent started it.
    const r = await spawnGit({
      args: ['-c', 'alias.parent=!cat /proc/$PPID/stat', 'parent'],
      cwd: dir,
      env,
      timeoutMs: 60_000,
    });
    assert.equal(r.kind, 'exit');
    const stat = r.kind === 'exit' ? r.stdout : '';
    assert.equal(Number(/\)\s+\S+\s+(\d+)/.exec(stat)?.[1]), serverPid, `git's parent (from ${stat})`);
    const comm = (await readFile(`/proc/${String(serverPid)}/comm`, 'utf8')).trim();
    assert.match(comm, /node|MainThread|electron|code/i);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('an engine whose git commands are done exits on its own: the idle server and threads keep nobody alive', async () => {
  const script = `
    const { spawnGit, gitParentPids } = require(${JSON.stringify(join(__dirname, '../../../src/engine/git/gitSpawner.ts'))});
    const { gitEnvironment } = require(${JSON.stringify(join(__dirname, '../../../src/engine/git/gitEnv.ts'))});
    (async () => {
      const env = gitEnvironment(true);
      for (let i = 0; i < 40 && gitParentPids().length < 2; i++)
        await spawnGit({ args: ['--version'], cwd: process.cwd(), env, timeoutMs: 60000 });
      await new Promise((r) => setTimeout(r, 200));
      const r = await spawnGit({ args: ['--version'], cwd: process.cwd(), env, timeoutMs: 60000 });
      process.stdout.write(JSON.stringify({ parents: gitParentPids().length, kind: r.kind }));
    })();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await within(
    'the process exits once its git commands are done',
    60_000,
    new Promise<number | null>((r) => child.once('exit', r)),
  ).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out), { parents: 2, kind: 'exit' });
});

void test('a session on the spawn server: what is written reaches git, its stdout comes back, kill stops it', async () => {
  const s = new SpawnServer();
  assert.equal(await within('the spawn server listens', 30_000, s.ready), true);
  const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
  try {
    let out = '';
    const hashed = s.session({ args: ['hash-object', '--stdin'], cwd: dir, env }, (d) => (out += d));
    hashed.write('hello ');
    hashed.write('world\n');
    hashed.end();
    const end = await within('git ending', 30_000, hashed.closed);
    assert.equal(end.code, 0);
    // `printf 'hello world\n' | git hash-object --stdin`
    assert.equal(out, '3b18e512dba79e4c8300dd08aeb37f8e728b8dad\n');
    // Reads stdin until it ends, which it never does: only the kill ends it.
    const waiting = s.session({ args: ['hash-object', '--stdin'], cwd: dir, env }, () => undefined);
    waiting.kill();
    assert.equal((await within('the killed git ending', 30_000, waiting.closed)).code, null);
    s.stop();
    await until('the stopped server is seen to be gone', 30_000, () => !s.alive);
    const after = await s.session({ args: ['--version'], cwd: dir, env }, () => undefined).closed;
    assert.equal(after.code, -1);
    assert.match(after.stderr, /git spawn server exited/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
