import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attemptsOf, dist, handoffsOf, type AgentMark, type HistoryRow } from '../../bench/workersHandoffs';

const STAGES = ['architect', 'test'];

function mark(
  taskId: string,
  attempt: number,
  started: number,
  marker: number,
  ended = marker + 5,
): [string, AgentMark] {
  return [`${taskId}#${attempt}`, { taskId, attempt, started, marker, ended }];
}

const assign = (at: number, stage: string, agent: string): HistoryRow => ({ at, event: 'assign', stage, agent });
const complete = (at: number, next: string): HistoryRow => ({ at, event: 'complete', stage: next });

test('attempts follow the assignments, each ended by the completion after it', () => {
  const history = new Map([
    [
      'T-1',
      [
        assign(10, 'architect', 'a'),
        { at: 20, event: 'fail', stage: 'architect' },
        assign(30, 'architect', 'a'),
        complete(40, 'test'),
      ],
    ],
  ]);
  assert.deepEqual(
    attemptsOf(history).map((a) => [a.attempt, a.stage, a.completed]),
    [
      [1, 'architect', undefined],
      [2, 'architect', 40],
    ],
  );
});

test('a hand-off runs from the marker to the next stage agent’s start, with its parts in order', () => {
  const history = new Map([
    ['T-1', [assign(0, 'architect', 'arch'), complete(130, 'test'), assign(150, 'test', 'tester')]],
  ]);
  const marks = new Map([mark('T-1', 1, 5, 100), mark('T-1', 2, 400, 900)]);
  const times = new Map([
    ['T-1#1', { reported: 120 }],
    ['T-1#2', { offered: 200, claimed: 210, received: 350 }],
  ]);
  const [h, ...rest] = handoffsOf(STAGES, history, marks, times, [
    'marker',
    'reported',
    'complete',
    'assign',
    'offered',
    'claimed',
    'received',
    'started',
  ]);
  assert.equal(rest.length, 0);
  assert.equal(h!.total, 300);
  assert.deepEqual(h!.parts, {
    'marker → reported': 20,
    'reported → complete': 10,
    'complete → assign': 20,
    'assign → offered': 50,
    'offered → claimed': 10,
    'claimed → received': 140,
    'received → started': 50,
  });
  // The sum of the parts is the whole.
  assert.equal(
    Object.values(h!.parts).reduce((a, b) => a + b, 0),
    h!.total,
  );
  assert.equal(h!.busy, 0);
  assert.equal(h!.firstOfAgent, true);
});

test('the time the next agent was still busy is measured from the marker, and only its first start is marked first', () => {
  // The tester works on T-1 until 500 (its completion) while T-2's architect marks at 300.
  const history = new Map([
    [
      'T-1',
      [assign(0, 'architect', 'arch'), complete(110, 'test'), assign(120, 'test', 'tester'), complete(500, 'done')],
    ],
    ['T-2', [assign(130, 'architect', 'arch'), complete(310, 'test'), assign(520, 'test', 'tester')]],
  ]);
  const marks = new Map([
    mark('T-1', 1, 1, 100),
    mark('T-1', 2, 140, 480, 490),
    mark('T-2', 1, 140, 300),
    mark('T-2', 2, 560, 700),
  ]);
  const hs = handoffsOf(STAGES, history, marks, new Map(), ['marker', 'complete', 'assign', 'started']);
  const second = hs.find((h) => h.taskId === 'T-2')!;
  assert.equal(second.total, 260);
  assert.equal(second.busy, 200);
  assert.equal(second.firstOfAgent, false);
  assert.equal(hs.find((h) => h.taskId === 'T-1')!.firstOfAgent, true);
});

test('a retry of the same stage is no hand-off, nor is an attempt without the agent’s notes', () => {
  const history = new Map([
    [
      'T-1',
      [
        assign(0, 'architect', 'arch'),
        { at: 50, event: 'fail', stage: 'architect' },
        assign(60, 'architect', 'arch'),
        complete(100, 'test'),
        assign(110, 'test', 'tester'),
      ],
    ],
  ]);
  const marks = new Map([mark('T-1', 1, 1, 40), mark('T-1', 2, 61, 90)]);
  assert.deepEqual(handoffsOf(STAGES, history, marks, new Map(), ['marker', 'started']), []);
  marks.set(...mark('T-1', 3, 130, 200));
  const hs = handoffsOf(STAGES, history, marks, new Map(), ['marker', 'started']);
  assert.deepEqual(
    hs.map((h) => [h.from.attempt, h.to.attempt, h.total]),
    [[2, 3, 40]],
  );
});

test('percentiles are nearest-rank', () => {
  const d = dist(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.deepEqual([d.n, d.p50, d.p95, d.p99, d.max], [100, 50, 95, 99, 100]);
  assert.ok(Number.isNaN(dist([]).p95));
});
