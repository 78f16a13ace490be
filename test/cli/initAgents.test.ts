import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, json, mentions, ok, requireCli, shown, stateFiles, withRepo } from './cliKit';

/** `pipeline init` and `pipeline agent add|list|remove`, as a user runs them. */

requireCli();

interface AgentJson {
  id: string;
  role: string;
  command: string;
  status: string;
  current_task: string | null;
}

test('init in a git repository creates .pipeline/ with its config; a second init is refused naming the file', async () => {
  await withRepo({}, async ({ dir }) => {
    const out = await ok(dir, 'init');
    mentions(out, join(dir, '.pipeline'), 'target branch main', 'pipeline agent add');
    const configFile = join(dir, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as {
      targetBranch: string;
      stages: Array<{ name: string; role: string }>;
    };
    assert.equal(config.targetBranch, 'main');
    assert.deepEqual(
      config.stages.map((s) => s.name),
      ['architect', 'test', 'implementation', 'supervisor'],
    );
    const before = await readFile(configFile);

    const r = await cli(dir, ['init']);
    assert.equal(r.code, 1, shown(r));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /already/);
    mentions(r.stderr, configFile, 'fix:');
    assert.deepEqual(await readFile(configFile), before, 'the existing config is not touched');

    // From a subdirectory, commands find the pipeline upwards, as git finds .git.
    const sub = join(dir, 'src', 'deep');
    await mkdir(sub, { recursive: true });
    mentions(await ok(sub, 'status'), 'orchestration: parallel');
  });
});

test('init outside a git repository fails clearly and creates nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-cli-nogit-'));
  try {
    const err = await fails(dir, 1, 'init');
    mentions(err, dir, 'not inside a git repository', 'git init');
    assert.equal(existsSync(join(dir, '.pipeline')), false);
    // Any other command says there is no pipeline and how to make one.
    mentions(await fails(dir, 1, 'status'), 'No pipeline found', 'pipeline init');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('init --preset scripted adds one agent per role, idle', async () => {
  await withRepo({}, async ({ dir }) => {
    const out = await ok(dir, 'init', '--preset', 'scripted');
    for (const role of ['architect', 'tester', 'implementer', 'supervisor'])
      mentions(out, `Added agent ${role} (${role}, scripted)`);
    const agents = await json<AgentJson[]>(dir, 'agent', 'list', '--json');
    assert.deepEqual(
      agents.map((a) => [a.id, a.role, a.command, a.status, a.current_task]),
      [
        ['architect', 'architect', 'scripted', 'idle', null],
        ['implementer', 'implementer', 'scripted', 'idle', null],
        ['supervisor', 'supervisor', 'scripted', 'idle', null],
        ['tester', 'tester', 'scripted', 'idle', null],
      ],
    );
    const table = await ok(dir, 'agent', 'list');
    assert.match(table, /^ID\s+ROLE\s+STATUS\s+TASK\s+COMMAND$/m);
    assert.match(table, /^architect\s+architect\s+idle\s+-\s+scripted$/m);
  });
});

test('agent add: a bad id, an unknown role, a duplicate and an empty command are refused, and nothing changes', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    assert.match(await ok(dir, 'agent', 'list'), /No agents/);
    mentions(
      await ok(dir, 'agent', 'add', 'impl-1', '--role', 'implementer', '--command', 'claude'),
      'Added agent impl-1 (implementer): claude',
    );
    const before = await stateFiles(dir);

    // Ids become directory and branch names: validated, never used raw (exit 2: bad usage).
    for (const bad of ['Impl', '1st', 'a b', '../x', 'x'.repeat(40)]) {
      mentions(
        await fails(dir, 2, 'agent', 'add', bad, '--role', 'implementer', '--command', 'claude'),
        'Invalid agent id',
        'fix:',
      );
    }
    // An unknown role: the error lists the roles and names the config file where roles are made.
    const role = await fails(dir, 1, 'agent', 'add', 'rev', '--role', 'reviewer', '--command', 'claude');
    mentions(role, '"reviewer"', 'architect, tester, implementer, supervisor', join(dir, '.pipeline', 'config.json'));
    // A duplicate.
    mentions(
      await fails(dir, 1, 'agent', 'add', 'impl-1', '--role', 'implementer', '--command', 'codex'),
      'Agent impl-1 exists already',
      'fix:',
    );
    // An empty command.
    mentions(
      await fails(dir, 2, 'agent', 'add', 'impl-2', '--role', 'implementer', '--command', '  '),
      'needs a command',
    );
    // A missing option is commander's usage error.
    const usage = await cli(dir, ['agent', 'add', 'impl-3', '--command', 'claude']);
    assert.equal(usage.code, 2, shown(usage));
    assert.match(usage.stderr, /--role/);

    assert.deepEqual(await stateFiles(dir), before, 'failed commands leave the state as it was');
    const agents = await json<AgentJson[]>(dir, 'agent', 'list', '--json');
    assert.deepEqual(
      agents.map((a) => a.id),
      ['impl-1'],
    );
  });
});

test('agent remove: an idle agent goes; an unknown one is named', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    mentions(await ok(dir, 'agent', 'remove', 'tester'), 'Removed agent tester.');
    const agents = await json<AgentJson[]>(dir, 'agent', 'list', '--json');
    assert.deepEqual(
      agents.map((a) => a.id),
      ['architect', 'implementer', 'supervisor'],
    );
    mentions(await fails(dir, 1, 'agent', 'remove', 'tester'), 'Unknown agent tester', 'pipeline agent list');
    // Refusing to remove a working agent without --force is tested against a real run in runModes.test.ts.
  });
});
