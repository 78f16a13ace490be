/**
 * Start-up of a big team: how long the pipeline's start-up repair takes to make the worktrees of N
 * agents (default 16) on the benchmark repository (3 000 files, 3 000 commits; bench/handoffRepo.ts),
 * the time `pipeline run` spends before the first agent can start, counted in the scale
 * benchmark's makespan.
 *
 * Each round clones the repository afresh and runs `GitWorkspace.repair(agents)`, as the monitor does
 * at start, then checks that every worktree is there and clean. With `--compare <src dir>` (another
 * checkout's `src`, e.g. one exported from an earlier commit with `git archive <commit> src | tar -x
 * -C <dir>`), each round also runs that checkout's repair, alternating, so both see the same load.
 * The machine may be shared: the load average is printed with the figures.
 *
 * Named apart from the scale benchmark so that `npm run bench -- scale` does not run it too; run it
 * with `npm run bench -- teamStart`. Five rounds by default: three varied 1.4–12.1 s at one load.
 * Run: node --import tsx bench/teamStart.bench.ts [--agents 16] [--rounds 5] [--compare <src dir>]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cachedRepo, cloneRepo, REALISTIC } from './handoffRepo';

const AGENTS = numberArg('--agents', 16);
const ROUNDS = numberArg('--rounds', 5);
const COMPARE = stringArg('--compare');
const RESULTS = join(__dirname, 'results');

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

function stringArg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Workspace {
  repair(agentIds: readonly string[]): Promise<string[]>;
  readonly repo: { read(args: readonly string[], options?: { cwd?: string }): Promise<string> };
  worktreePath(agentId: string): string;
}
type Open = (dir: string, worktreeRoot: string) => Promise<Workspace>;

async function opener(srcDir: string): Promise<Open> {
  const m = (await import(join(resolve(srcDir), 'engine', 'git', 'gitWorkspace.ts'))) as {
    GitWorkspace: { open: Open };
  };
  return (dir, root) => m.GitWorkspace.open(dir, root);
}

/** One start-up: a fresh clone, then the repair that makes every agent's worktree; its wall time (ms). */
async function once(bare: string, open: Open, agents: string[]): Promise<number> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-team-start-'));
  try {
    const dir = join(base, 'repo');
    await cloneRepo(bare, dir);
    const ws = await open(dir, '../worktrees');
    const t0 = performance.now();
    const report = await ws.repair(agents);
    const ms = performance.now() - t0;
    const created = report.filter((r) => r.startsWith('created the worktree')).length;
    if (created !== agents.length)
      throw new Error(`made ${created} of ${agents.length} worktrees: ${report.join('; ')}`);
    for (const a of agents) {
      const status = await ws.repo.read(['status', '--porcelain'], { cwd: ws.worktreePath(a) });
      if (status.trim()) throw new Error(`the worktree of ${a} is not clean: ${status.slice(0, 200)}`);
    }
    return ms;
  } finally {
    await rm(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const bare = await cachedRepo(RESULTS, REALISTIC);
  const agents = Array.from({ length: AGENTS }, (_, i) => `agent-${i + 1}`);
  const variants: Array<{ name: string; open: Open; ms: number[] }> = [
    { name: 'this checkout', open: await opener(join(__dirname, '..', 'src')), ms: [] },
  ];
  if (COMPARE) variants.push({ name: `compare (${COMPARE})`, open: await opener(COMPARE), ms: [] });
  console.log(
    `Start-up: ${AGENTS} agents' worktrees on ${REALISTIC.files} files, ${REALISTIC.commits} commits; ${ROUNDS} rounds (${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)})`,
  );
  for (let r = 0; r < ROUNDS; r++) {
    // Alternating, first one then the other first, so neither always runs on a warmer cache.
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const ms = await once(bare, v.open, agents);
      v.ms.push(ms);
      console.log(`  round ${r + 1}, ${v.name}: ${(ms / 1000).toFixed(2)} s (load ${loadavg()[0]!.toFixed(2)})`);
    }
  }
  for (const v of variants) {
    console.log(
      `${v.name}: median ${(median(v.ms) / 1000).toFixed(2)} s, min ${(Math.min(...v.ms) / 1000).toFixed(2)} s, max ${(Math.max(...v.ms) / 1000).toFixed(2)} s`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
