import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idealMakespanMs } from '../../bench/scaleIdeal';
import { scaleChartSvg } from '../../bench/scaleChart';

const independent = (n: number) => Array.from({ length: n }, () => ({ prerequisites: [] as number[] }));
const chain = (n: number) => Array.from({ length: n }, (_, i) => ({ prerequisites: i ? [i - 1] : [] }));

test('independent tasks fill the pipeline: (tasks / agents per stage + stages − 1) stage times', () => {
  assert.equal(idealMakespanMs(independent(10), [100, 100, 100, 100], 1), (10 + 3) * 100);
  assert.equal(idealMakespanMs(independent(12), [100, 100, 100, 100], 4), (3 + 3) * 100);
});

test('a chain runs one task at a time, whatever the agents', () => {
  assert.equal(idealMakespanMs(chain(5), [100, 100, 100, 100], 1), 5 * 400);
  assert.equal(idealMakespanMs(chain(5), [100, 100, 100, 100], 4), 5 * 400);
});

test('the slowest stage sets the pace', () => {
  // Stage 2 takes 300 ms: ten tasks pass it one after another, after the first stage's 100 ms, and the last one ends 100 ms later.
  assert.equal(idealMakespanMs(independent(10), [100, 300, 100], 1), 100 + 10 * 300 + 100);
});

test('a prerequisite waits for the merge of the task it needs, not for its first stage', () => {
  // Task 1 needs task 0: it enters when task 0 leaves the last stage.
  const tasks = [{ prerequisites: [] }, { prerequisites: [0] }];
  assert.equal(idealMakespanMs(tasks, [100, 100], 2), 400);
});

test('a prerequisite later in the list is refused, not waited for forever', () => {
  assert.throws(() => idealMakespanMs([{ prerequisites: [1] }, { prerequisites: [0] }], [100], 1), /cannot finish/);
});

test('the chart shows each run with its share of the ideal', () => {
  const run = (agents: number, measured: number, ideal: number) => ({
    agents,
    merged: 10,
    tasks: 10,
    throughputPerMin: measured,
    idealMeasured: { throughputPerMin: ideal },
    idealNominal: { throughputPerMin: ideal * 1.1 },
    ofIdeal: measured / ideal,
    loadBefore: [1, 1, 1],
    loadAfter: [2, 1, 1],
  });
  const svg = scaleChartSvg({
    at: '2026-01-01T00:00:00Z',
    tasks: 10,
    agentMs: 1000,
    cores: 2,
    budget: { fractionOfIdeal: 0.9 },
    runs: [run(8, 20, 40), run(4, 15, 20)],
  });
  assert.match(svg, /^<svg /);
  assert.match(svg, /20\.0\/min, 50 % of ideal/);
  assert.match(svg, /15\.0\/min, 75 % of ideal/);
  assert.match(svg, /budget: 90 % of ideal/);
});

test('a chart of one run marks its budget and nominal ideal, which have no line to draw', () => {
  const one = (runs: number) =>
    scaleChartSvg({
      at: '2026-01-01T00:00:00Z',
      tasks: 1000,
      agentMs: 2000,
      cores: 2,
      budget: { fractionOfIdeal: 0.9 },
      runs: [4, 8, 16].slice(0, runs).map((agents) => ({
        agents,
        merged: 1000,
        tasks: 1000,
        throughputPerMin: 90,
        idealMeasured: { throughputPerMin: 100 },
        idealNominal: { throughputPerMin: 120 },
        ofIdeal: 0.9,
        loadBefore: [0.3, 0.3, 0.3],
        loadAfter: [12, 8, 4],
      })),
    });
  const levelMarks = (svg: string) => [
    ...svg.matchAll(/<line x1="([\d.]+)" x2="([\d.]+)" y1="([\d.]+)" y2="\3"[^>]*dasharray/g),
  ];
  // With several runs the lines show them, and the legend's two samples are the only level dashes;
  // one run adds a short level mark for its budget (90 % of 100) and one for its nominal ideal (120).
  assert.equal(levelMarks(one(3)).length, 2);
  const marks = levelMarks(one(1));
  assert.equal(marks.length, 4);
  const [budget, nominal] = marks.slice(0, 2).sort((a, b) => Number(b[3]) - Number(a[3]));
  assert.ok(Number(nominal![3]) < Number(budget![3]), 'the nominal ideal is drawn above the budget');
  assert.equal(Number(budget![2]) - Number(budget![1]), 28);
});
