import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gitEnvironment } from '../../../src/engine/git/gitEnv';
import { spawnGit } from '../../../src/engine/git/gitSpawner';

/**
 * git processes started on worker threads (gitSpawner.ts): each request gets its own answer (many
 * in flight at once), exit codes and both streams come back intact, a directory that is gone is an
 * error rather than a hang, and a silent command is killed by its timeout.
 */

const env = gitEnvironment(true);

void test('many commands in flight at once: each gets its own answer', async () => {
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

void test('a failing command: its exit code and stderr; a missing directory: an error', async () => {
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

void test('a command that waits for input it never gets is killed after its timeout', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'git-spawner-'));
  try {
    // `hash-object --stdin` reads stdin until it ends, which it never does.
    const r = await spawnGit({ args: ['hash-object', '--stdin'], cwd: dir, env, timeoutMs: 300 });
    assert.equal(r.kind, 'timeout');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
