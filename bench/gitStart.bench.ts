/**
 * Starting git from a large engine: what one git command costs, in wall time and in CPU, when the
 * engine that asks for it holds a lot of memory, with git started on the engine's worker threads
 * against started by the spawn server (src/engine/git/gitSpawnServer.ts).
 *
 * Linux starts a process by forking the one that asks; the fork copies the asker's page tables, so
 * its cost follows the asker's resident memory. The engine holds the pipeline's state and runs in
 * the CLI (about 100–250 MB in a busy run) or in an editor's extension host (often 500 MB or more).
 *
 * Each variant runs in a process of its own that first fills `--ballast` MB (default 300) with
 * touched memory, then runs `--runs` (default 300) `git --version` one after another through
 * `spawnGit`, the engine's own entry point, and reports the wall time per command and the CPU used
 * per command by the engine process (all its threads) and by the spawn server. The server variant
 * lets the server start first (after the first few commands, as in a run) and measures after.
 * Nothing is budgeted; the figures explain the hand-off benchmark's.
 *
 * Run: node --import tsx bench/gitStart.bench.ts [--ballast MB] [--runs N]
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { reportFigure } from './figures';

const ballastMb = numberArg('--ballast', 300);
const runs = numberArg('--runs', 300);

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

interface Measured {
  readonly how: string;
  readonly rssMb: number;
  readonly wallMsPerCommand: number;
  readonly engineCpuMsPerCommand: number;
  readonly serverCpuMsPerCommand: number | null;
}

/** The child's side: ballast, warm-up, then the measured commands. */
const CHILD = `
const { spawnGit, gitParentPids } = require(process.env.SPAWNER);
const { gitEnvironment } = require(process.env.GIT_ENV);
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const ballast = [];
for (let i = 0; i < Number(process.env.BALLAST_MB); i++) ballast.push(Buffer.alloc(1 << 20, i & 255));
const cpuOf = (pid) => {
  if (pid === undefined) return 0;
  const f = readFileSync('/proc/' + pid + '/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
};
(async () => {
  const env = gitEnvironment(true);
  const run = () => spawnGit({ args: ['--version'], cwd: process.cwd(), env, timeoutMs: 60000 });
  for (let i = 0; i < 40; i++) await run();
  const server = gitParentPids()[1];
  const n = Number(process.env.RUNS);
  const c0 = process.cpuUsage();
  const s0 = cpuOf(server);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await run();
    if (r.kind !== 'exit' || r.exitCode !== 0) throw new Error('git --version failed: ' + JSON.stringify(r));
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({
    rssMb: process.memoryUsage().rss / 1e6,
    wallMsPerCommand: wall / n,
    engineCpuMsPerCommand: (c.user + c.system) / 1000 / n,
    serverCpuMsPerCommand: server === undefined ? null : (cpuOf(server) - s0) / n,
    server: server !== undefined,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function measure(how: string, spawnEnv: Record<string, string>): Measured {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', CHILD], {
    encoding: 'utf8',
    env: {
      ...process.env,
      ...spawnEnv,
      SPAWNER: require.resolve('../src/engine/git/gitSpawner'),
      GIT_ENV: require.resolve('../src/engine/git/gitEnv'),
      BALLAST_MB: String(ballastMb),
      RUNS: String(runs),
    },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${how}: the measuring process failed:\n${r.stderr}`);
  const m = JSON.parse(r.stdout) as Omit<Measured, 'how'> & { server: boolean };
  if (how === 'spawn server' && !m.server) throw new Error('the spawn server did not start');
  return { how, ...m };
}

function main(): void {
  if (process.platform !== 'linux') {
    console.log('gitStart: measures /proc; Linux only.');
    return;
  }
  const before = loadavg()[0]!.toFixed(2);
  const results = [
    measure('worker threads', { PIPELINE_GIT_SPAWN: 'threads' }),
    measure('spawn server', {}),
    measure('worker threads', { PIPELINE_GIT_SPAWN: 'threads' }),
    measure('spawn server', {}),
  ];
  const after = loadavg()[0]!.toFixed(2);
  console.log(
    `\nStarting git from an engine holding ${ballastMb} MB of ballast (${runs} × git --version, one at a time; Node ${process.version}, ${cpus().length} cores, load ${before} → ${after}; cpu in clock ticks of 10 ms for the server)`,
  );
  console.log(
    `${'how'.padEnd(16)}${'engine RSS'.padStart(12)}${'wall/cmd'.padStart(12)}${'engine CPU/cmd'.padStart(16)}${'server CPU/cmd'.padStart(16)}`,
  );
  for (const m of results) {
    console.log(
      `${m.how.padEnd(16)}${`${m.rssMb.toFixed(0)} MB`.padStart(12)}${`${m.wallMsPerCommand.toFixed(2)} ms`.padStart(12)}${`${m.engineCpuMsPerCommand.toFixed(2)} ms`.padStart(16)}${(m.serverCpuMsPerCommand === null ? '–' : `${m.serverCpuMsPerCommand.toFixed(2)} ms`).padStart(16)}`,
    );
  }
  for (const how of ['worker threads', 'spawn server']) {
    const mine = results.filter((m) => m.how === how);
    const wall = Math.min(...mine.map((m) => m.wallMsPerCommand));
    reportFigure({
      figure: `one git command from a ${ballastMb} MB engine, ${how}: wall time`,
      measured: `${wall.toFixed(2)} ms`,
      budget: '–',
      met: null,
      note: 'the better of two runs; explains the hand-off figures',
    });
  }
}

main();
