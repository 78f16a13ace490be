import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isPipelineError } from '../../../../src/engine/errors';
import { GitRepo } from '../../../../src/engine/git/gitRepo';
import { GitRemote, isTransientRemoteError } from '../../../../src/engine/git/remote/gitRemote';
import {
  classifyRemoteFailure,
  RemoteAuthError,
  RemoteMissingError,
  RemoteUnreachableError,
} from '../../../../src/engine/git/remote/remoteErrors';
import { Worktrees } from '../../../../src/engine/git/worktrees';
import { git } from '../gitFixture';
import { clusterPerFile, originTip } from './remoteFixture';

/**
 * Remote failures against real git: an HTTP server of our own on 127.0.0.1 that refuses
 * authentication, answers 503 or never answers, a closed port, and a path with no repository.
 */

const c = clusterPerFile(['x']);
let server: Server;
let port = 0;
let closedPort = 0;
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/auth/')) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('unauthorized');
    } else if (req.url?.startsWith('/down/')) {
      res.writeHead(503).end('maintenance');
    }
    // `/hang/`: never answered, like a server that stopped responding.
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  // A port that was free a moment ago and has nobody listening: connections are refused.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** The machine's clone with its remote pointed at `url`, bound again (and with `timeoutMs`). */
async function pointedAt(url: string, timeoutMs?: number): Promise<GitRemote> {
  const dir = c.machines.x!.dir;
  await git(dir, 'remote', 'set-url', 'origin', url);
  const repo = await GitRepo.open(dir, timeoutMs ? { timeoutMs } : {});
  return GitRemote.open(repo, new Worktrees(repo, '../x-worktrees'));
}

void test('an unreachable remote is a transient error naming the remote, the branch and the fix', async () => {
  // First a real task branch, received and committed while the remote was there.
  const ok = await pointedAt(c.origin);
  await ok.receive('architect', 'TASK-1', 'main');
  await git(join(c.base, 'x-worktrees', 'architect'), 'commit', '--quiet', '--allow-empty', '-m', 'TASK-1: design');
  const url = `http://127.0.0.1:${closedPort}/origin.git`;
  const remote = await pointedAt(url);
  const checks: Array<[string, () => Promise<unknown>]> = [
    ['publish pipeline/TASK-1', () => remote.publish('TASK-1')],
    ['receive pipeline/TASK-1', () => remote.receive('architect', 'TASK-1', 'main')],
    ['merge pipeline/TASK-1 into main', () => remote.merge('TASK-1', 'main', 'Merge TASK-1')],
  ];
  for (const [action, call] of checks) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof RemoteUnreachableError, `${action}: ${String(e)}`);
      assert.equal(e.code, 'git-unreachable');
      assert.ok(isTransientRemoteError(e));
      assert.ok(e.message.startsWith(`Cannot ${action}: `), e.message);
      assert.ok(e.message.includes(url), e.message);
      assert.match(e.message, /origin .*cannot be reached.*Nothing was changed/);
      assert.match(e.details.fix ?? '', /tries again later.*remote get-url origin/);
      return true;
    });
  }
  assert.equal(await originTip(c, 'pipeline/TASK-1'), '', 'nothing reached the real remote');
});

void test('a server error (503) and a server that stops answering are transient too', async () => {
  const down = await pointedAt(`http://127.0.0.1:${port}/down/origin.git`);
  await assert.rejects(down.publish('TASK-1'), (e: unknown) => e instanceof RemoteUnreachableError);
  // git is stopped after the clone's timeout without output.
  const hung = await pointedAt(`http://127.0.0.1:${port}/hang/origin.git`, 1500);
  await assert.rejects(hung.publish('TASK-1'), (e: unknown) => {
    assert.ok(e instanceof RemoteUnreachableError, String(e));
    assert.match(e.message, /no output for 1500 ms/);
    return true;
  });
});

void test('refused authentication is permanent, and credentials in the URL never reach a message', async () => {
  for (const url of [
    `http://127.0.0.1:${port}/auth/origin.git`,
    `http://pipeline:s3cret-token@127.0.0.1:${port}/auth/origin.git`,
  ]) {
    const remote = await pointedAt(url);
    await assert.rejects(remote.publish('TASK-1'), (e: unknown) => {
      assert.ok(e instanceof RemoteAuthError, `${url}: ${String(e)}`);
      assert.equal(e.code, 'git');
      assert.equal(isTransientRemoteError(e), false);
      assert.match(e.message, /refused authentication/);
      assert.match(e.details.fix ?? '', /credential helper|SSH key/);
      assert.doesNotMatch(`${e.message} ${e.details.fix ?? ''}`, /s3cret/);
      return true;
    });
  }
});

void test('a remote that is not a repository, and a clone without the remote, are permanent configuration errors', async () => {
  const nowhere = join(c.base, 'no-such-origin.git');
  const remote = await pointedAt(nowhere);
  await assert.rejects(remote.receive('architect', 'TASK-1', 'main'), (e: unknown) => {
    assert.ok(e instanceof RemoteMissingError, String(e));
    assert.equal(isTransientRemoteError(e), false);
    assert.match(e.details.fix ?? '', /remote set-url origin/);
    return true;
  });
  const repo = await GitRepo.open(c.user);
  await assert.rejects(GitRemote.open(repo, new Worktrees(repo, '../wt'), { remote: 'upstream' }), (e: unknown) => {
    assert.ok(isPipelineError(e) && e.code === 'invalid-config', String(e));
    assert.match(e.message, /no remote named upstream/);
    assert.match(e.details.fix ?? '', /git -C .* remote add upstream <url>/);
    return true;
  });
  await pointedAt(c.origin);
});

void test("git's messages for ssh and https failures are classified", () => {
  const cases: Array<[string, string | undefined]> = [
    ['git@host: Permission denied (publickey).\nfatal: Could not read from remote repository.', 'auth'],
    ['Host key verification failed.\nfatal: Could not read from remote repository.', 'auth'],
    ["fatal: Authentication failed for 'https://host/x.git/'", 'auth'],
    ["fatal: unable to access 'https://host/x.git/': The requested URL returned error: 403", 'auth'],
    ["fatal: unable to access 'https://host/x.git/': Could not resolve host: host", 'unreachable'],
    ['ssh: connect to host host port 22: Connection refused', 'unreachable'],
    ['ssh: Could not resolve hostname host: Temporary failure in name resolution', 'unreachable'],
    ['error: RPC failed; curl 56 Recv failure: Connection reset by peer', 'unreachable'],
    ["fatal: unable to access 'https://host/x.git/': The requested URL returned error: 502", 'unreachable'],
    ['remote: Repository not found.\nfatal: repository not found', 'missing'],
    ['fatal: Needed a single revision', undefined],
  ];
  for (const [stderr, kind] of cases) assert.equal(classifyRemoteFailure(stderr), kind, stderr);
});
