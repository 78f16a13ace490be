import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IndexedHeap } from '../../../src/engine/scheduler/indexedHeap';
import { prng } from './schedulerFixtures';

interface E {
  key: string;
  v: number;
}
const before = (a: E, b: E): boolean => a.v < b.v || (a.v === b.v && a.key < b.key);
const sorted = (xs: Iterable<E>): string[] => [...xs].sort((a, b) => (before(a, b) ? -1 : 1)).map((e) => e.key);

void describe('IndexedHeap', () => {
  void it('matches a sorted list under random pushes, updates and removals (seeded)', () => {
    const rnd = prng(7);
    const heap = new IndexedHeap<E>(before);
    const model = new Map<string, E>();
    for (let i = 0; i < 5000; i++) {
      const key = `k${Math.floor(rnd() * 300)}`;
      const op = rnd();
      if (op < 0.5) {
        const e = { key, v: Math.floor(rnd() * 50) };
        heap.push(e);
        model.set(key, e);
      } else if (op < 0.8) {
        assert.equal(heap.remove(key), model.delete(key));
      } else if (op < 0.9) {
        const top = heap.pop();
        const want = sorted(model.values())[0];
        assert.equal(top?.key, want);
        if (want !== undefined) model.delete(want);
      }
      assert.equal(heap.size, model.size);
      if (i % 250 === 0)
        assert.deepEqual(
          [...heap.ordered()].map((e) => e.key),
          sorted(model.values()),
        );
    }
    assert.deepEqual(
      [...heap.ordered()].map((e) => e.key),
      sorted(model.values()),
    );
  });

  void it('walks in order lazily without changing the heap', () => {
    const heap = new IndexedHeap<E>(before);
    for (let i = 0; i < 100; i++) heap.push({ key: `k${i}`, v: (i * 37) % 100 });
    const it = heap.ordered()[Symbol.iterator]();
    assert.equal(it.next().value?.v, 0);
    assert.equal(it.next().value?.v, 1);
    assert.equal(heap.size, 100);
    assert.equal(heap.peek()?.v, 0);
  });
});
