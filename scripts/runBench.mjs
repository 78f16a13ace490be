// Runs every benchmark in bench/ (files named *.bench.ts), one process each so they do not disturb
// each other, and prints their own output, then one table of every budgeted figure: what, measured,
// budget, met or not, with the load average before and after each benchmark (the machine's other
// work slows every figure; the load says how much there was).
//
//   npm run bench                  every benchmark (the scale one in its quick variant)
//   npm run bench -- store scale   only those whose file name contains one of the words
//   npm run bench -- --full        the scale benchmark with 1 000 tasks (an hour or more on 2 cores)
//   npm run bench -- --quick       every benchmark in its quick variant (the extension one excepted)
//
// Each benchmark appends its figures to the file named in BENCH_FIGURES_FILE (bench/figures.ts). The
// table is also written to bench/results/summary.md and summary.json (gitignored).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const FULL = args.includes('--full');
const QUICK = args.includes('--quick');
const filters = args.filter((a) => !a.startsWith('--'));
const files = readdirSync('bench')
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();

/**
 * The flags a benchmark gets: the scale one is quick unless --full; --quick makes every other one
 * quick but the extension one, whose budget is stated for its 20-task run (its quick 6-task run
 * saves only seconds).
 */
function flagsFor(file) {
  if (file === 'scale.bench.ts') return FULL ? ['--full'] : [];
  if (file === 'extension.bench.ts') return [];
  return QUICK ? ['--quick'] : [];
}

const load = () => loadavg().map((x) => x.toFixed(2));
const figuresFile = join(tmpdir(), `bench-figures-${process.pid}.jsonl`);
rmSync(figuresFile, { force: true });
const loadAtStart = load();
const started = Date.now();
const runs = [];
for (const f of files) {
  const flags = flagsFor(f);
  console.log(`\n=== ${f}${flags.length ? ` ${flags.join(' ')}` : ''} === (load ${load().join(' ')})`);
  const before = load();
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join('bench', f), ...flags], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_FIGURES_FILE: figuresFile },
  });
  runs.push({
    file: f,
    flags,
    code: r.status,
    seconds: (Date.now() - t0) / 1000,
    loadBefore: before,
    loadAfter: load(),
  });
}

let figures = [];
try {
  figures = readFileSync(figuresFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
} catch {
  figures = [];
}
rmSync(figuresFile, { force: true });

const verdict = (met) => (met === true ? 'met' : met === false ? 'NOT MET' : '–');
const rows = [];
for (const run of runs) {
  const name = run.file.replace(/\.bench\.ts$/, '');
  const mine = figures.filter((x) => x.bench === name);
  const loadText = `${run.loadBefore[0]} → ${run.loadAfter[0]}`;
  if (mine.length === 0)
    rows.push({
      figure: `${name}: ${run.code === 0 ? 'no budgeted figure' : `FAILED (exit ${run.code}); see its output above`}`,
      measured: '',
      budget: '',
      met: run.code === 0 ? '' : 'FAILED',
      load: loadText,
      note: '',
    });
  for (const x of mine)
    rows.push({
      figure: x.figure,
      measured: x.measured,
      budget: x.budget,
      met: verdict(x.met),
      load: loadText,
      note: x.note ?? '',
    });
}

const head = { figure: 'figure', measured: 'measured', budget: 'budget', met: 'met?', load: 'load before → after' };
const cols = ['figure', 'measured', 'budget', 'met', 'load'];
const width = Object.fromEntries(cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => r[c].length))]));
const line = (r) =>
  cols.map((c) => (c === 'measured' || c === 'budget' ? r[c].padStart(width[c]) : r[c].padEnd(width[c]))).join('  ');
const loadAtEnd = load();
console.log('');
console.log(
  `Budgets (shared/engineering.md): ${runs.length} benchmark(s), ${((Date.now() - started) / 60_000).toFixed(1)} min, Node ${process.version}, ${cpus().length} cores${FULL ? ', scale --full' : ''}${QUICK ? ', quick' : ''}`,
);
console.log(`load average (1, 5, 15 min) before: ${loadAtStart.join(' ')}   after: ${loadAtEnd.join(' ')}`);
console.log('');
console.log(line(head));
console.log(cols.map((c) => '-'.repeat(width[c])).join('  '));
for (const r of rows) console.log(line(r));
const notes = rows.filter((r) => r.note);
if (notes.length) {
  console.log('');
  for (const r of notes) console.log(`  ${r.figure}: ${r.note}`);
}

mkdirSync(join('bench', 'results'), { recursive: true });
const md = [
  `# Benchmarks, ${new Date().toISOString()}`,
  '',
  `Node ${process.version}, ${cpus().length} cores. Load average (1, 5, 15 min) before: ${loadAtStart.join(' ')}; after: ${loadAtEnd.join(' ')}.`,
  '',
  '| figure | measured | budget | met? | load before → after | note |',
  '| --- | ---: | ---: | --- | --- | --- |',
  ...rows.map((r) => `| ${r.figure} | ${r.measured} | ${r.budget} | ${r.met} | ${r.load} | ${r.note} |`),
  '',
].join('\n');
writeFileSync(join('bench', 'results', 'summary.md'), md);
writeFileSync(
  join('bench', 'results', 'summary.json'),
  `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cores: cpus().length, loadAtStart, loadAtEnd, runs, figures }, null, 2)}\n`,
);
console.log(`\nwrote bench/results/summary.md and summary.json`);
process.exit(
  runs.some((r) => r.code !== 0 && !figures.some((x) => x.bench === r.file.replace(/\.bench\.ts$/, ''))) ? 1 : 0,
);
