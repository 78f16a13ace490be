import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TypedEvents } from '../../../src/engine/model/events';
import { JsonLogger, pipelineLogFile, type LogRecord } from '../../../src/engine/observability/jsonLogger';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import type { Agent, Task } from '../../../src/engine/model/schema';
import { transitionTask } from '../../../src/engine/model/taskLifecycle';

/** The JSON log: rotation by size with no line lost or torn, the event lines, the line hook. */

async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'obs-log-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The log files, oldest first: pipeline.log.<n> … pipeline.log.1, pipeline.log. */
async function logFiles(file: string): Promise<string[]> {
  const dir = join(file, '..');
  const base = file.slice(dir.length + 1);
  const names = (await readdir(dir)).filter((n) => n === base || n.startsWith(`${base}.`));
  const num = (n: string) => (n === base ? 0 : Number(n.slice(base.length + 1)));
  return names.sort((a, b) => num(b) - num(a)).map((n) => join(dir, n));
}

async function readRecords(files: string[]): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), `${f} ends with a whole line`);
    for (const line of text.split('\n').filter(Boolean)) out.push(JSON.parse(line) as LogRecord);
  }
  return out;
}

void test('rotation at a small size: files stay under the limit, every line parses, none is lost, torn or reordered', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = pipelineLogFile(join(dir, 'logs'));
    const maxBytes = 4096;
    const logger = new JsonLogger(file, { maxBytes, maxFiles: 1000 });
    const seen: number[] = [];
    logger.onLine(({ record, text }) => {
      seen.push(record.data?.seq as number);
      assert.equal((JSON.parse(text) as LogRecord).message, record.message);
    });
    const N = 3000;
    for (let i = 0; i < N; i++) {
      // Lines of varied sizes, some multi-byte, logged in bursts while writes are in flight.
      const pad = 'é→'.repeat(i % 97);
      logger.log(i % 10 === 0 ? 'warn' : 'info', 'test:line', `line ${i} ${pad}`, {
        task: `TASK-${i % 7}`,
        data: { seq: i },
      });
      if (i % 500 === 250) await new Promise((r) => setImmediate(r));
    }
    await logger.close();
    logger.log('info', 'test:late', 'after close: ignored');
    assert.equal(seen.length, N);

    const files = await logFiles(file);
    assert.ok(files.length > 10, `rotated into ${files.length} files`);
    assert.equal(files[files.length - 1], file);
    assert.equal(files[files.length - 2], `${file}.1`);
    for (const f of files) assert.ok((await stat(f)).size <= maxBytes, `${f} is at most ${maxBytes} bytes`);
    const records = await readRecords(files);
    assert.deepEqual(
      records.map((r) => r.data?.seq),
      Array.from({ length: N }, (_, i) => i),
    );
    for (const r of records) {
      assert.equal(Object.keys(r).slice(0, 4).join(), 'time,level,event,task');
      assert.ok(!Number.isNaN(Date.parse(r.time)));
      assert.match(r.message, /^line \d+/);
    }
  } finally {
    await cleanup();
  }
});

void test('only maxFiles rotated files are kept: the newest lines, contiguous; an existing log is continued', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, 'pipeline.log');
    await writeFile(
      file,
      JSON.stringify({
        time: new Date().toISOString(),
        level: 'info',
        event: 'old',
        message: 'from before',
        data: { seq: -1 },
      }) + '\n',
    );
    const logger = new JsonLogger(file, { maxBytes: 1000, maxFiles: 3 });
    for (let i = 0; i < 500; i++) logger.log('info', 'test:line', `line ${i}`, { data: { seq: i } });
    await logger.flush();
    logger.log('info', 'test:line', 'line 500', { data: { seq: 500 } });
    await logger.close();
    const files = await logFiles(file);
    assert.deepEqual(files, [`${file}.3`, `${file}.2`, `${file}.1`, file]);
    const seqs = (await readRecords(files)).map((r) => r.data?.seq as number);
    assert.equal(seqs[seqs.length - 1], 500);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => 500 - seqs.length + 1 + i),
    );

    // A second logger on a full file rotates before its first line.
    const small = join(dir, 'small.log');
    await writeFile(small, 'x'.repeat(90) + '\n');
    const l2 = new JsonLogger(small, { maxBytes: 100, maxFiles: 2 });
    l2.log('info', 'e', 'm');
    await l2.close();
    assert.equal(await readFile(`${small}.1`, 'utf8'), 'x'.repeat(90) + '\n');
    assert.equal((JSON.parse(await readFile(small, 'utf8')) as LogRecord).message, 'm');
  } finally {
    await cleanup();
  }
});

void test('pipeline events become lines with task and agent; state:changed is skipped; close writes what is queued', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const events = new TypedEvents<PipelineEventMap>();
    const logger = JsonLogger.forPipeline({ events, home: { logsDir: join(dir, 'logs') } });
    const task: Task = {
      id: 'TASK-001',
      title: 'Parse the config',
      description: 'secret description text',
      prerequisites: [],
      priority: 'high',
      paths: [],
      labels: [],
      status: 'queued',
      stage: 'implementation',
      assigned_to: null,
      branch: 'pipeline/TASK-001',
      attempt: 0,
      failures: 0,
      not_before: null,
      blocked_reason: null,
      created_at: 'x',
      updated_at: 'x',
      seq: 1,
      merged_commit: null,
      history: [],
    };
    const agent: Agent = {
      id: 'impl',
      role: 'implementer',
      command: 'scripted',
      status: 'idle',
      current_task: null,
      since: null,
      created_at: 'x',
    };
    const mirrored: string[] = [];
    logger.onLine(({ record }) => mirrored.push(`${record.level} ${record.message}`));
    events.emit('task:added', { task });
    const working = transitionTask(task, { type: 'assign', agent: 'impl', attempt: 1 }, '2026-01-01T00:00:00Z');
    events.emit('task:transition', {
      before: task,
      after: working,
      event: { type: 'assign', agent: 'impl', attempt: 1 },
    });
    events.emit('agent:changed', { before: agent, after: { ...agent, status: 'working', current_task: 'TASK-001' } });
    events.emit('state:changed', { seq: 3 });
    events.emit('agent:started', {
      agentId: 'impl',
      taskId: 'TASK-001',
      stage: 'implementation',
      attempt: 1,
      command: 'node agent.js',
      at: 1,
    });
    events.emit('agent:exited', {
      agentId: 'impl',
      taskId: 'TASK-001',
      attempt: 1,
      code: 1,
      signal: null,
      marker: false,
    });
    const failed = transitionTask(
      working,
      { type: 'fail', reason: 'exit 1', notBefore: '2026-01-01T00:01:00Z' },
      '2026-01-01T00:00:30Z',
    );
    events.emit('task:transition', {
      before: working,
      after: failed,
      event: { type: 'fail', reason: 'exit 1', notBefore: '2026-01-01T00:01:00Z' },
    });
    events.emit('check:finished', {
      taskId: 'TASK-001',
      stage: 'test',
      passed: false,
      evidence: '/e.log',
      durationMs: 12,
    });
    events.emit('merge:finished', {
      taskId: 'TASK-001',
      into: 'main',
      commit: null,
      conflicts: ['a.ts'],
      durationMs: 5,
    });
    events.emit('monitor:warning', { message: 'git is slow', agentId: 'impl' });
    events.emit('leader:lost', { leader: { pid: 5, host: 'h', epoch: 2, since: 's', renewedAt: 'r', label: 'other' } });
    events.emit('mode:rollout', { from: 'shadow', to: 'pilot' });
    await logger.close(); // no flush first: close writes what is queued
    events.emit('monitor:info', { message: 'after close' });

    const text = await readFile(join(dir, 'logs', 'pipeline.log'), 'utf8');
    assert.ok(!text.includes('secret description text'), 'task text stays out of the log');
    const records = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogRecord);
    assert.deepEqual(
      records.map((r) => r.event),
      [
        'task:added',
        'task:transition',
        'agent:changed',
        'agent:started',
        'agent:exited',
        'task:transition',
        'check:finished',
        'merge:finished',
        'monitor:warning',
        'leader:lost',
        'mode:rollout',
      ],
    );
    assert.equal(mirrored.length, records.length);
    const [added, assign, changed, started, exited, fail, check, merge, warning, lost, mode] = records;
    assert.deepEqual([added!.task, added!.agent, added!.level], ['TASK-001', undefined, 'info']);
    assert.deepEqual(added!.data, { task: { id: 'TASK-001', status: 'queued', stage: 'implementation' } });
    assert.deepEqual(
      [assign!.task, assign!.agent, assign!.message],
      ['TASK-001', 'impl', 'impl took TASK-001 (implementation, attempt 1)'],
    );
    assert.deepEqual(assign!.data, {
      transition: 'assign',
      from: 'queued',
      to: 'working',
      fromStage: 'implementation',
      stage: 'implementation',
      attempt: 1,
      agent: 'impl',
    });
    assert.deepEqual([changed!.level, changed!.agent, changed!.task], ['debug', 'impl', 'TASK-001']);
    assert.deepEqual(
      [started!.task, started!.agent, started!.data],
      ['TASK-001', 'impl', { stage: 'implementation', attempt: 1, command: 'node agent.js', at: 1 }],
    );
    assert.deepEqual([exited!.level, exited!.task, exited!.agent], ['warn', 'TASK-001', 'impl']);
    assert.deepEqual([fail!.level, fail!.agent, fail!.data?.reason], ['warn', 'impl', 'exit 1']);
    assert.deepEqual([check!.level, check!.task], ['warn', 'TASK-001']);
    assert.deepEqual([merge!.level, merge!.message], ['warn', 'TASK-001 would conflict with main in a.ts']);
    assert.deepEqual(
      [warning!.level, warning!.agent, warning!.message, warning!.data],
      ['warn', 'impl', 'git is slow', undefined],
    );
    assert.equal(lost!.level, 'warn');
    assert.match(lost!.message, /to other \(pid 5 on h\)/);
    assert.equal(mode!.message, 'rollout mode shadow → pilot');
  } finally {
    await cleanup();
  }
});

void test('a failing write is reported and the logger goes on', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // The log's directory is a file: every write fails.
    const blocker = join(dir, 'logs');
    await writeFile(blocker, 'not a directory');
    const errors: Error[] = [];
    const logger = new JsonLogger(join(blocker, 'pipeline.log'), { onError: (e) => errors.push(e) });
    logger.log('info', 'e', 'one');
    await logger.flush();
    assert.ok(errors.length >= 1);
    await rm(blocker);
    logger.log('info', 'e', 'two');
    await logger.close();
    const records = (await readFile(join(blocker, 'pipeline.log'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LogRecord);
    assert.deepEqual(
      records.map((r) => r.message),
      ['two'],
    );
  } finally {
    await cleanup();
  }
});

void test("an agent's steps, its spending and its pause become lines; its running counts do not", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const events = new TypedEvents<PipelineEventMap>();
    const logger = JsonLogger.forPipeline({ events, home: { logsDir: join(dir, 'logs') } });
    const lines: LogRecord[] = [];
    logger.onLine(({ record }) => lines.push(record));
    const progress = {
      agentId: 'impl',
      taskId: 'TASK-001',
      stage: 'implementation',
      attempt: 1,
      startedAt: 1,
      step: 'Bash: npm test',
      stepAt: 2,
      steps: 3,
      message: null,
      usage: null,
      session: null,
    };
    events.emit('agent:progress', {
      agentId: 'impl',
      progress,
      line: 'impl TASK-001 (implementation): Bash: npm test',
    });
    // Tokens so far, a message, the attempt's end: not worth a line each.
    events.emit('agent:progress', { agentId: 'impl', progress: { ...progress, message: 'Running the tests.' } });
    events.emit('agent:progress', { agentId: 'impl', progress: null });
    events.emit('attempt:usage', {
      taskId: 'TASK-001',
      usage: {
        attempt: 1,
        stage: 'implementation',
        agent: 'impl',
        at: 'x',
        session: 's-1',
        models: [
          { model: 'opus', input: 1200, output: 80, cacheRead: 400, cacheWrite: 0, costUsd: 0.0123, costSource: 'cli' },
        ],
      },
    });
    events.emit('agent:paused', {
      agentIds: ['impl', 'tester'],
      until: '2031-01-15T17:30:00.000Z',
      reason: 'usage limit reached',
      taskId: 'TASK-001',
    });
    await logger.close();
    assert.deepEqual(
      lines.map((l) => [l.level, l.event, l.task, l.agent, l.message]),
      [
        ['debug', 'agent:progress', 'TASK-001', 'impl', 'impl TASK-001 (implementation): Bash: npm test'],
        [
          'info',
          'attempt:usage',
          'TASK-001',
          'impl',
          'TASK-001 attempt 1 (implementation) spent opus 1200 in, 80 out, 400 cache, $0.0123',
        ],
        [
          'warn',
          'agent:paused',
          'TASK-001',
          undefined,
          'impl, tester paused until 2031-01-15T17:30:00.000Z: usage limit reached',
        ],
      ],
    );
  } finally {
    await cleanup();
  }
});
