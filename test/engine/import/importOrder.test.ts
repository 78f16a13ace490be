import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cyclicComponents } from '../../../src/engine/import/importCycles';
import { orderByPrerequisites } from '../../../src/engine/import/importOrder';
import { mulberry32 } from './generateTaskMaster';

/** Prerequisites first, otherwise the input order: stable, so an ordered file comes out unchanged. */

const t = (id: string, ...prerequisites: string[]) => ({ spec: { id, prerequisites } });
const ids = (xs: ReadonlyArray<{ spec: { id: string } }>) => xs.map((x) => x.spec.id);

void test('an ordered list is unchanged', () => {
  const list = [t('A'), t('B', 'A'), t('C'), t('D', 'B', 'C')];
  assert.deepEqual(ids(orderByPrerequisites(list)), ['A', 'B', 'C', 'D']);
});

void test('a prerequisite listed later moves up, just before the first task that needs it', () => {
  assert.deepEqual(ids(orderByPrerequisites([t('A', 'C'), t('B'), t('C')])), ['B', 'C', 'A']);
  assert.deepEqual(ids(orderByPrerequisites([t('A', 'D'), t('B', 'A'), t('C'), t('D')])), ['C', 'D', 'A', 'B']);
});

void test('prerequisites outside the list and self-references are ignored', () => {
  assert.deepEqual(ids(orderByPrerequisites([t('A', 'X-9'), t('B', 'B', 'A')])), ['A', 'B']);
});

void test('tasks on a cycle follow the others in input order', () => {
  assert.deepEqual(ids(orderByPrerequisites([t('A', 'C'), t('B', 'A'), t('C', 'B'), t('D'), t('E', 'D')])), [
    'D',
    'E',
    'A',
    'B',
    'C',
  ]);
});

void test('random acyclic graphs: every prerequisite first, nothing lost, ties in input order', () => {
  const rnd = mulberry32(5);
  for (let round = 0; round < 50; round++) {
    const n = 1 + Math.floor(rnd() * 60);
    // Prerequisites point at lower numbers, then the list is shuffled.
    const list = Array.from({ length: n }, (_, i) =>
      t(
        `T-${i}`,
        ...Array.from({ length: Math.floor(rnd() * 4) }, () => `T-${Math.floor(rnd() * i)}`).filter(() => i > 0),
      ),
    );
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [list[i], list[j]] = [list[j] as (typeof list)[number], list[i] as (typeof list)[number]];
    }
    const out = orderByPrerequisites(list);
    assert.equal(out.length, list.length);
    assert.deepEqual(new Set(ids(out)), new Set(ids(list)));
    const pos = new Map(ids(out).map((id, i) => [id, i]));
    for (const x of out)
      for (const p of x.spec.prerequisites)
        if (p !== x.spec.id) assert.ok((pos.get(p) ?? -1) < (pos.get(x.spec.id) ?? -1));
  }
});

void test('cyclicComponents finds exactly the groups of tasks that reach one another', () => {
  const rnd = mulberry32(11);
  for (let round = 0; round < 200; round++) {
    const n = 1 + Math.floor(rnd() * 12);
    const edges = Array.from({ length: n }, () =>
      Array.from({ length: Math.floor(rnd() * 3) }, () => Math.floor(rnd() * n)),
    );
    // Brute force: i and j belong together when each reaches the other.
    const reach = edges.map((_, s) => {
      const seen = new Set<number>();
      const todo = [...(edges[s] ?? [])];
      while (todo.length) {
        const v = todo.pop() as number;
        if (seen.has(v)) continue;
        seen.add(v);
        todo.push(...(edges[v] ?? []));
      }
      return seen;
    });
    const expected: number[][] = [];
    const taken = new Set<number>();
    for (let i = 0; i < n; i++) {
      if (taken.has(i)) continue;
      const group = [i];
      for (let j = i + 1; j < n; j++) if (reach[i]?.has(j) && reach[j]?.has(i)) group.push(j);
      group.forEach((g) => taken.add(g));
      if (group.length > 1) expected.push(group);
    }
    assert.deepEqual(cyclicComponents(edges), expected, JSON.stringify(edges));
  }
  // A chain of 100 000 with one link back: iterative, so no stack overflow.
  const chain = Array.from({ length: 100_000 }, (_, i) => (i ? [i - 1] : [99_999]));
  assert.equal(cyclicComponents(chain)[0]?.length, 100_000);
});
