import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIMIT_NOTE } from '../../src/engine/monitor/limits';
import type { HistoryEntry } from '../../src/engine/model/schema';
import { waitsOutLimit } from '../../src/views/taskLimit';
import { newTask } from '../support/taskFixtures';

/** A queued task put back by a usage limit, and no other, is said to wait it out (plain Node). */

const AT = '2026-01-01T00:00:00.000Z';
const entry = (event: string, note?: string): HistoryEntry => ({
  at: AT,
  event,
  from: 'working',
  to: 'queued',
  stage: 'test',
  ...(note !== undefined ? { note } : {}),
});

void test("a task requeued by its agent's usage limit waits it out until an agent takes it", () => {
  const limit = entry('requeue', `${LIMIT_NOTE} of claude-2's CLI (API Error: 429); resumes at 22:48`);
  assert.equal(waitsOutLimit(newTask('TASK-001', 0, { status: 'queued', history: [limit] })), true);
  const taken = { ...entry('assign'), from: 'queued' as const, to: 'working' as const };
  assert.equal(waitsOutLimit(newTask('TASK-001', 0, { status: 'working', history: [limit, taken] })), false);
});

void test('other requeues, other states and a fresh task do not', () => {
  const stopped = entry('requeue', 'the monitor stopped');
  assert.equal(waitsOutLimit(newTask('TASK-001', 0, { status: 'queued', history: [stopped] })), false);
  assert.equal(waitsOutLimit(newTask('TASK-001', 0, { status: 'queued' })), false);
  const limit = entry('requeue', `${LIMIT_NOTE} of claude-2's CLI (x); resumes at 22:48`);
  assert.equal(waitsOutLimit(newTask('TASK-001', 0, { status: 'blocked', history: [limit] })), false);
});
