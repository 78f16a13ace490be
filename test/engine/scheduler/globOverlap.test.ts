import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import picomatch from 'picomatch';
import { globsOverlap, normaliseGlob } from '../../../src/engine/scheduler/globOverlap';
import { prng } from './schedulerFixtures';

void describe('globsOverlap', () => {
  const cases: [string, string, boolean][] = [
    ['src/a.ts', 'src/a.ts', true],
    ['src/a.ts', 'src/b.ts', false],
    ['src/engine', 'src/engine/schema.ts', true], // a literal may be a directory
    ['src/engine/', 'src/engine/x/y.ts', true],
    ['./src//engine', 'src/engine/**', true],
    ['src/engine/**', 'src/engine/schema.ts', true],
    ['src/engine/**', 'src/views/tree.ts', false],
    ['src/engine/**', 'src/views/**', false],
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/a.md', false],
    ['src/*.ts', 'src/deep/a.ts', false],
    ['src/*', 'src/deep/a.ts', true], // `src/*` matches the directory `src/deep`
    ['src/*/a.ts', 'src/x', true], // `src/x` may be the directory holding `src/x/a.ts`
    ['src/*/a.ts', 'src/x/b.ts', false],
    ['**/*.json', 'package.json', true],
    ['**/*.json', 'src/a.ts', true], // `src/a.ts` could be a directory: conservative
    ['*.json', 'src/a.json', false],
    ['{src,lib}/**', 'docs/x.md', true], // braces: no static prefix, conservative
    ['src/{a,b}.ts', 'src/b.ts', true],
    ['src/{a,b}.ts', 'src/c.ts', true], // braces may hide a slash: conservative
    ['src/*.ts', 'src/*.md', true], // two globs with one prefix: conservative
    ['src/a/*.ts', 'src/b/*.ts', false],
    ['!src/a.ts', 'docs/b.md', true], // negation: conservative
    ['../outside', 'src/a.ts', true],
    ['.', 'src/a.ts', true],
    ['SRC/A.ts', 'src/a.ts', true], // case-insensitive file systems
    ['src/.env', 'src/*', true], // dot files count
  ];
  for (const [a, b, want] of cases) {
    void it(`${a} × ${b} → ${want}`, () => {
      assert.equal(globsOverlap(a, b), want);
      assert.equal(globsOverlap(b, a), want, 'symmetric');
    });
  }

  void it('normalises paths', () => {
    assert.equal(normaliseGlob('./src//a/'), 'src/a');
    assert.equal(normaliseGlob('/src/a'), 'src/a');
    assert.equal(normaliseGlob(''), '**');
  });

  // Property: no false negatives. Whenever some file matches both globs, they must be reported as
  // overlapping; a file also counts if one glob matches a directory above it (globs may name directories).
  void it('never misses an overlap (seeded property test)', () => {
    const rnd = prng(20250101);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const dirs = ['src', 'src/engine', 'src/engine/scheduler', 'src/views', 'test', 'test/engine', 'docs'];
    const names = ['a.ts', 'b.ts', 'index.ts', 'readme.md', 'x.json', '.env'];
    const files = dirs.flatMap((d) => names.map((n) => `${d}/${n}`)).concat(names);
    const globTemplates = [
      (): string => pick(files),
      (): string => pick(dirs),
      (): string => `${pick(dirs)}/**`,
      (): string => `${pick(dirs)}/*.ts`,
      (): string => `${pick(dirs)}/**/*.${pick(['ts', 'md', 'json'])}`,
      (): string => `**/${pick(names)}`,
      (): string => `${pick(dirs)}/*`,
      (): string => `*/${pick(names)}`,
      (): string => `${pick(dirs)}/{a,b}.ts`,
      (): string => `src/*/${pick(names)}`,
    ];
    const ancestorsAndSelf = (f: string): string[] => f.split('/').map((_, i, segs) => segs.slice(0, i + 1).join('/'));
    const matchers = new Map<string, (p: string) => boolean>();
    const hits = (glob: string, file: string): boolean => {
      let m = matchers.get(glob);
      if (!m) matchers.set(glob, (m = picomatch(normaliseGlob(glob), { dot: true })));
      return ancestorsAndSelf(file).some((p) => m(p));
    };
    let overlapsSeen = 0;
    for (let i = 0; i < 3000; i++) {
      const a = pick(globTemplates)();
      const b = pick(globTemplates)();
      const shared = files.find((f) => hits(a, f) && hits(b, f));
      if (shared !== undefined) {
        overlapsSeen++;
        assert.ok(globsOverlap(a, b), `${a} and ${b} both cover ${shared} but were reported disjoint`);
      }
    }
    assert.ok(overlapsSeen > 300, 'the generator produced overlaps');
  });
});
