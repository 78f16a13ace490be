import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { join } from 'node:path';
import { gitWritableDirs, PRESETS, resolveCommand, validateCommand } from '../../../src/engine/agents/commandTemplate';
import { shellQuote, splitWords } from '../../../src/engine/agents/shellWords';
import { isPipelineError } from '../../../src/engine/errors';
import { Pipeline } from '../../../src/engine/pipeline';
import { sandbox } from './monitorKit';
import { tempRepo } from '../../support/agentCliKit';

/** Command templates: split once like a shell would, placeholders substituted inside each word. */

const run = promisify(execFile);

const ctx = {
  taskFile: '/work/wt/.pipeline-task/TASK-001.attempt-1.md',
  taskId: 'TASK-001',
  worktree: '/work/wt',
  role: 'implementer',
};
const opts = { scriptedAgent: '/opt/pipeline/dist/scriptedAgent.js', node: '/usr/bin/node' };

void test('splitWords: blanks separate words; quotes and backslashes group and escape like a POSIX shell', () => {
  assert.deepEqual(splitWords('  agent   --flag  value '), ['agent', '--flag', 'value']);
  assert.deepEqual(splitWords(`agent 'one word' "another word"`), ['agent', 'one word', 'another word']);
  assert.deepEqual(splitWords(`a"b c"d 'e'f`), ['ab cd', 'ef'], 'quoted parts join the word around them');
  assert.deepEqual(splitWords(`say "a \\"quoted\\" word" 'it''s'`), ['say', 'a "quoted" word', 'its']);
  assert.deepEqual(
    splitWords(`'$HOME' "\\n" \\$x a\\ b`),
    ['$HOME', '\\n', '$x', 'a b'],
    'no expansion; backslash escapes outside quotes',
  );
  assert.deepEqual(splitWords(`x '' ""`), ['x', '', ''], 'empty quotes are empty words');
  assert.deepEqual(splitWords(`tab\tand\nnewline`), ['tab', 'and', 'newline']);
  assert.deepEqual(splitWords(''), []);
});

void test('an unterminated quote is an error that says so', () => {
  for (const t of [`agent 'open`, `agent "open`]) {
    assert.throws(
      () => splitWords(t),
      (e: unknown) => isPipelineError(e) && e.code === 'usage' && /Unterminated/.test(e.message),
    );
  }
});

void test('placeholders are substituted per word: values with spaces and quotes stay one argument each', () => {
  const evil = {
    taskFile: `/tmp/a dir/it's "here"; rm -rf ~ $(touch pwned) \`id\`.md`,
    taskId: `TASK-1'; echo injected; '`,
    worktree: '/tmp/my worktree',
    role: 'tester && reboot',
  };
  const r = resolveCommand('agent --file={taskFile} {taskId} -C {worktree} --role {role}', evil, opts);
  assert.deepEqual(r.argv, ['agent', `--file=${evil.taskFile}`, evil.taskId, '-C', evil.worktree, '--role', evil.role]);
  assert.deepEqual(r.env, {
    PIPELINE_TASK_FILE: evil.taskFile,
    PIPELINE_TASK_ID: evil.taskId,
    PIPELINE_WORKTREE: evil.worktree,
    PIPELINE_ROLE: evil.role,
  });
});

void test('a substituted value is not scanned again for placeholders', () => {
  const r = resolveCommand('agent {worktree} {taskFile}', { ...ctx, worktree: '/tmp/{taskId}/{node}' }, opts);
  assert.deepEqual(r.argv, ['agent', '/tmp/{taskId}/{node}', ctx.taskFile]);
});

void test('the display line, given to a shell, yields exactly the argv: nothing is injected', async () => {
  const evil = {
    taskFile: `/tmp/x y/it's "q" $(echo PWNED) \`echo PWNED\` ; echo PWNED | cat & \\ \n next`,
    taskId: `T-1' || echo PWNED '`,
    worktree: '/tmp/w',
    role: 'r*',
  };
  const r = resolveCommand(`printf '[%s]\\n' {taskFile} {taskId} {role}`, evil, opts);
  const { stdout } = await run('sh', ['-c', r.display], { cwd: '/' });
  assert.equal(stdout, `[${evil.taskFile}]\n[${evil.taskId}]\n[${evil.role}]\n`);
  assert.ok(!stdout.split('\n').includes('PWNED'));
});

void test('shellQuote leaves plain words alone and single-quotes the rest', () => {
  assert.equal(shellQuote('/usr/bin/node'), '/usr/bin/node');
  assert.equal(shellQuote('a b'), `'a b'`);
  assert.equal(shellQuote(`it's`), `'it'\\''s'`);
  assert.equal(shellQuote(''), `''`);
});

void test('{node} and {scriptedAgent} resolve; the scripted preset is node running the scripted agent on the task file', () => {
  const r = resolveCommand('scripted', ctx, opts);
  assert.deepEqual(r.argv, [opts.node, opts.scriptedAgent, ctx.taskFile]);
  const d = resolveCommand('{node} -e 1', ctx, { scriptedAgent: 'x' });
  assert.equal(d.argv[0], process.execPath, 'node defaults to this Node.js');
});

void test('every preset resolves, the prompt one argument that names the task file', () => {
  for (const [name, preset] of Object.entries(PRESETS)) {
    validateCommand(name);
    const r = resolveCommand(name, { ...ctx, taskFile: '/a dir/t.md' }, opts);
    assert.ok(r.argv.length >= 2, name);
    assert.ok(
      r.argv.some((w) => w.includes('/a dir/t.md')),
      `${name}: the task file is in one argument`,
    );
    assert.ok(!r.argv.includes('/a'), `${name}: the path was not split`);
    assert.ok(preset.description.length > 0);
  }
});

void test('an unknown placeholder is an error naming it; an empty command is an error', () => {
  for (const t of ['agent {prompt}', 'agent --x={TaskFile}', 'agent "{taskfile}"']) {
    assert.throws(
      () => validateCommand(t),
      (e: unknown) =>
        isPipelineError(e) &&
        e.code === 'usage' &&
        /Unknown placeholder \{(prompt|TaskFile|taskfile)\}/.test(e.message),
      t,
    );
    assert.throws(() => resolveCommand(t, ctx, opts), /Unknown placeholder/, t);
  }
  assert.throws(
    () => validateCommand('   '),
    (e: unknown) => isPipelineError(e) && /empty/.test(e.message),
  );
  assert.doesNotThrow(
    () => validateCommand('agent {taskFile} {taskId} {worktree} {role} {node} {scriptedAgent} {} {1}'),
    'only {name} with letters is a placeholder',
  );
});

void test('agent add refuses a command with an unknown placeholder or an open quote, before any task can reach it', async () => {
  const sb = await sandbox({ tasks: [], agents: [] });
  const p = await Pipeline.open({ cwd: sb.dir, role: 'lead' });
  try {
    await assert.rejects(
      p.addAgent({ id: 'bad', role: 'implementer', command: 'my-agent --prompt {prompt}' }),
      (e: unknown) => isPipelineError(e) && e.code === 'usage' && /\{prompt\}/.test(e.message),
    );
    await assert.rejects(
      p.addAgent({ id: 'bad', role: 'implementer', command: `my-agent 'open` }),
      (e: unknown) => isPipelineError(e) && /Unterminated/.test(e.message),
    );
    assert.deepEqual(Object.keys(p.state.agents), [], 'nothing was added');
    await p.addAgent({ id: 'good', role: 'implementer', command: 'my-agent --file {taskFile}' });
    await p.addAgent({ id: 'preset', role: 'tester', command: 'claude' });
    assert.deepEqual(Object.keys(p.state.agents).sort(), ['good', 'preset']);
  } finally {
    await p.close();
    await sb.cleanup();
  }
});

void test("gitWritableDirs: a worktree's own git dir, the common objects and the task branches' refs and reflogs; a main checkout's .git; nothing for a plain folder", async () => {
  const r = await tempRepo({ agentId: 'agent-7' });
  try {
    const common = join(r.repo, '.git');
    const branches = [join(common, 'refs', 'heads', 'pipeline'), join(common, 'logs', 'refs', 'heads', 'pipeline')];
    assert.deepEqual(gitWritableDirs(r.worktree), [
      join(common, 'worktrees', 'agent-7'),
      join(common, 'objects'),
      ...branches,
    ]);
    assert.deepEqual(gitWritableDirs(r.repo), [common, join(common, 'objects'), ...branches]);
    assert.deepEqual(gitWritableDirs(r.home), []);
  } finally {
    await r.cleanup();
  }
});
