/**
 * Workers across machines (src/engine/workers/): how long a claim takes, and how long a hand-off
 * takes when the next stage runs on another worker, beside the same hand-off on one machine.
 *
 * Setup, all on this machine: a throwaway PostgreSQL cluster, a bare origin made from the benchmark
 * repository (bench/handoffRepo.ts: 3 000 files and commits; `--quick`: 300), a coordinator
 * (`pipeline worker --coordinate`) and three workers (`pipeline worker --agents …`), each a process
 * of the built CLI in a clone of its own, one per stage group so that every hand-off crosses
 * workers: w1 runs the architect and the supervisor, w2 the tester, w3 the implementer. The agents
 * are the project's scripted agent working a fixed time (bench/workersAgent.ts notes their times).
 * N tasks run through all four stages in parallel mode, then the same tasks on one machine (the
 * monitor in this process on the file journal, as handoff.bench.ts's parallel run), same agents.
 *
 * Figures:
 * - claim latency: the offer inserted → a worker took it (the claims table's offered_at and
 *   claimed_at), p50/p95/p99; budget ≤ 50 ms p95 (shared/engineering.md);
 * - hand-off: the marker written → the next stage's agent process started, p50/p95/p99, with its
 *   parts as far as timestamps allow (across workers: the worker's report, the coordinator's
 *   completion record and assignment, the offer, the claim, the branch received in the worker's
 *   clone, the agent's start; on one machine: completion, assignment, the agent's start), and "engine":
 *   less the time the next agent was still busy with another task. There is no budget for it
 *   across workers: it is reported beside the single-machine figure. An agent's first start in the
 *   run (its worktree made then) is kept out of the distribution and counted apart.
 *
 * What the profile showed (2 cores, load average 15–25 from other work; 16 tasks, 3 000 files):
 * notifications arrive (a claim's p50 is a few ms; the coordinator reads a report within ~50 ms p50),
 * so the 2 s polling backstop never shows. The claim's p95 was 86 ms while offers and reports sent
 * their NOTIFY in a second statement after the write; one statement (claimStore.ts) gave 37 ms
 * (p50 16 → 6 ms). What a hand-off across workers adds over one machine is git transport: the
 * worker's push after the marker (marker → reported ≈ 350 ms p50, against ≈ 50 ms to the completion
 * on one machine), the coordinator's fetch, log and diff for the next task file (assign → offered
 * ≈ 550 ms p50) and the next worker's fetch, switch and merge of the target (claimed → received
 * ≈ 750 ms p50): about fifteen git processes per attempt on a worker (`--trace-git`: push ≈ 100 ms,
 * fetch 50–100 ms p50). With one agent per stage the run is throughput-bound, and each stage holds
 * its agent longer across workers, so the time the next agent is still busy dominates the p95.
 *
 * Run: node --import tsx bench/workers.bench.ts [--quick] [--tasks N] [--work-ms MS] [--rounds N] [--trace-git]
 *   (needs `npm run build` and Debian's postgresql; writes bench/results/workers.json)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_STAGES } from '../src/engine/model/configSchema';
import { PostgresCluster } from '../test/support/postgresCluster';
import { msText, reportFigure } from './figures';
import { gitCommandTimes } from './gitTrace';
import { cachedRepo, REALISTIC, type RepoShape } from './handoffRepo';
import { readMarks, writeBenchAgent } from './workersAgent';
import { dist, handoffsOf, type AttemptTimes, type Dist, type Handoff, type HistoryRow } from './workersHandoffs';
import { singleMachine } from './workersSingle';
import { assertBuilt, makeTeam, receivedTimes, seedPipeline, writeJson } from './workersTeam';

const QUICK = process.argv.includes('--quick');
/** `--trace-git`: the git commands of the workers and the coordinator, timed by a shim (a profile). */
const TRACE_GIT = process.argv.includes('--trace-git');
const TASKS = numberArg('--tasks', QUICK ? 8 : 16);
const WORK_MS = numberArg('--work-ms', 300);
/** `--rounds N`: N alternating rounds of both runs, pooled (a steadier figure on a busy machine). */
const ROUNDS = numberArg('--rounds', 1);
/** What the figures' notes say of the variant run. */
const VARIANT = `${QUICK ? ', quick' : ''}${ROUNDS > 1 ? `, ${ROUNDS} rounds pooled` : ''}`;
const SMALL: RepoShape = { files: 300, commits: 300 };
const SHAPE = QUICK ? SMALL : REALISTIC;
const STAGES = DEFAULT_STAGES.map((s) => s.name);
const RESULTS = join(__dirname, 'results');
const TIMEOUT_MS = 240_000;
/** One worker per stage group: every hand-off goes to another worker. */
const GROUPS = { w1: ['architect', 'supervisor'], w2: ['tester'], w3: ['implementer'] };
const CLAIM_BUDGET_MS = 50;

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

interface Summary {
  label: string;
  all: number;
  firstStarts: number;
  handoff: Dist;
  engine: Dist;
  busy: Dist;
  parts: Record<string, Dist>;
  wallSeconds: number;
}

function summarise(label: string, hs: readonly Handoff[], wallSeconds: number): Summary {
  const kept = hs.filter((h) => !h.firstOfAgent);
  const names = [...new Set(kept.flatMap((h) => Object.keys(h.parts)))];
  return {
    label,
    all: hs.length,
    firstStarts: hs.length - kept.length,
    handoff: dist(kept.map((h) => h.total)),
    engine: dist(kept.map((h) => h.total - h.busy)),
    busy: dist(kept.map((h) => h.busy)),
    parts: Object.fromEntries(names.map((n) => [n, dist(kept.flatMap((h) => (n in h.parts ? [h.parts[n]!] : [])))])),
    wallSeconds,
  };
}

const triple = (d: Dist) => `${msText(d.p50)} / ${msText(d.p95)} / ${msText(d.p99)}`.padStart(30);

async function acrossWorkers(
  cluster: PostgresCluster,
  base: string,
  repo: string,
  command: string,
): Promise<{
  history: Map<string, HistoryRow[]>;
  times: Map<string, AttemptTimes>;
  claims: number[];
  wallSeconds: number;
}> {
  const traceDir = TRACE_GIT ? join(base, 'trace') : undefined;
  const team = await makeTeam(
    cluster,
    join(base, 'workers'),
    repo,
    GROUPS,
    (p) => seedPipeline(p, command, TASKS, WORK_MS),
    traceDir,
  );
  try {
    await team.start(60_000);
    const t0 = Date.now();
    await team.untilDone(TASKS, TIMEOUT_MS);
    const wallSeconds = (Date.now() - t0) / 1000;
    const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8 AS ${col.replace(/_at$/, '')}`;
    const rows = await team.query<{
      task_id: string;
      attempt: number;
      status: string;
      offered: number;
      claimed: number | null;
      finished: number | null;
    }>(
      `SELECT task_id, attempt, status, ${ms('offered_at')}, ${ms('claimed_at')}, ${ms('finished_at')} FROM pipeline.claims`,
    );
    const history = new Map<string, HistoryRow[]>();
    for (const r of await team.query<{
      task_id: string;
      at: string;
      event: string;
      stage: string;
      agent: string | null;
    }>('SELECT task_id, at, event, stage, agent FROM pipeline.task_history ORDER BY task_id, n')) {
      let xs = history.get(r.task_id);
      if (!xs) history.set(r.task_id, (xs = []));
      xs.push({ at: Date.parse(r.at), event: r.event, stage: r.stage, agent: r.agent ?? undefined });
    }
    const received = await receivedTimes(team.workerDirs.values());
    const times = new Map<string, AttemptTimes>();
    for (const r of rows) {
      const k = `${r.task_id}#${r.attempt}`;
      times.set(k, {
        offered: r.offered,
        ...(r.claimed !== null ? { claimed: r.claimed } : {}),
        ...(r.finished !== null ? { reported: r.finished } : {}),
        ...(received.has(k) ? { received: received.get(k)! } : {}),
      });
    }
    const claims = rows.filter((r) => r.claimed !== null).map((r) => r.claimed! - r.offered);
    await writeFile(join(RESULTS, 'workers-output.log'), team.output());
    if (traceDir) await printGitTrace(traceDir, ['coord', ...Object.keys(GROUPS)]);
    return { history, times, claims, wallSeconds };
  } finally {
    await team.stop();
  }
}

async function printGitTrace(dir: string, who: readonly string[]): Promise<void> {
  console.log('');
  console.log('git commands by process (their agents’ add and commit included): n, total, p50 / p95');
  for (const name of who) {
    const xs = await gitCommandTimes(join(dir, `${name}.log`));
    console.log(
      `  ${name.padEnd(6)} ${xs
        .slice(0, 8)
        .map((x) => `${x.command} ${x.n}× ${msText(x.totalMs)} (${msText(x.p50)} / ${msText(x.p95)})`)
        .join('; ')}`,
    );
  }
}

async function main(): Promise<void> {
  assertBuilt();
  const t = Date.now();
  const repo = await cachedRepo(RESULTS, SHAPE);
  if (Date.now() - t > 1000) console.log(`made the benchmark repository in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const base = await mkdtemp(join(tmpdir(), 'pipeline-workers-bench-'));
  const cluster = await PostgresCluster.create();
  const loadBefore = loadavg();
  try {
    // Rounds alternate the two runs, so a change in the machine's other load falls on both.
    const acrossHandoffs: Handoff[] = [];
    const singleHandoffs: Handoff[] = [];
    const claims: number[] = [];
    let acrossWall = 0;
    let singleWall = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const dir = join(base, `round-${round}`);
      await mkdir(dir, { recursive: true });
      const of = ROUNDS > 1 ? ` (round ${round} of ${ROUNDS})` : '';
      const marksWorkers = join(dir, 'marks-workers.jsonl');
      const marksSingle = join(dir, 'marks-single.jsonl');
      console.log(`across 3 workers${of}: ${TASKS} tasks × ${STAGES.length} stages, agents working ${WORK_MS} ms…`);
      const w = await acrossWorkers(cluster, dir, repo, await writeBenchAgent(join(dir, 'agent-w.js'), marksWorkers));
      console.log(`one machine${of}: the same ${TASKS} tasks…`);
      const singleCommand = await writeBenchAgent(join(dir, 'agent-s.js'), marksSingle);
      const s = await singleMachine(
        dir,
        repo,
        (p) => seedPipeline(p, singleCommand, TASKS, WORK_MS),
        TASKS,
        TIMEOUT_MS,
      );
      acrossHandoffs.push(
        ...handoffsOf(STAGES, w.history, await readMarks(marksWorkers), w.times, [
          'marker',
          'reported',
          'complete',
          'assign',
          'offered',
          'claimed',
          'received',
          'started',
        ]),
      );
      singleHandoffs.push(
        ...handoffsOf(STAGES, s.history, await readMarks(marksSingle), s.times, [
          'marker',
          'complete',
          'assign',
          'started',
        ]),
      );
      claims.push(...w.claims);
      acrossWall += w.wallSeconds;
      singleWall += s.wallSeconds;
    }
    const across = summarise('across 3 workers', acrossHandoffs, acrossWall);
    const single = summarise('one machine', singleHandoffs, singleWall);
    const claim = dist(claims);
    const loadAfter = loadavg();

    console.log('');
    console.log(
      `Workers: ${TASKS} tasks${ROUNDS > 1 ? ` × ${ROUNDS} rounds` : ''}, ${SHAPE.files} files / ${SHAPE.commits} commits, agents ${WORK_MS} ms (Node ${process.version}, ${cpus().length} cores, load ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)}${QUICK ? ', quick' : ''})`,
    );
    console.log('p50 / p95 / p99; a hand-off is the marker written → the next stage’s agent process started');
    console.log('');
    console.log(
      `${'claim (offer → claimed)'.padEnd(40)}${String(claim.n).padStart(4)}${triple(claim)}   budget p95 ≤ ${CLAIM_BUDGET_MS} ms`,
    );
    console.log('');
    console.log(
      `${'run'.padEnd(40)}${'n'.padStart(4)}${'hand-off'.padStart(30)}${'engine (less busy)'.padStart(30)}${'next agent busy'.padStart(30)}   wall`,
    );
    for (const r of [single, across])
      console.log(
        `${r.label.padEnd(40)}${String(r.handoff.n).padStart(4)}${triple(r.handoff)}${triple(r.engine)}${triple(r.busy)}   ${r.wallSeconds.toFixed(0)} s`,
      );
    for (const r of [single, across]) {
      console.log('');
      console.log(`${r.label}: the parts (an agent's first start, ${r.firstStarts} of ${r.all}, left out)`);
      for (const [name, d] of Object.entries(r.parts))
        console.log(`  ${name.padEnd(38)}${String(d.n).padStart(4)}${triple(d)}   max ${msText(d.max)}`);
    }
    const ratio = across.handoff.p95 / single.handoff.p95;
    console.log('');
    console.log(
      `across workers / one machine, p95: hand-off ${ratio.toFixed(1)}×, less the next agent's busy time ${(across.engine.p95 / single.engine.p95).toFixed(1)}×`,
    );

    reportFigure({
      figure: 'a claim across workers (offer → claimed), p95',
      measured: msText(claim.p95),
      budget: `≤ ${CLAIM_BUDGET_MS} ms`,
      met: claim.p95 <= CLAIM_BUDGET_MS,
      note: `p50 ${msText(claim.p50)}, p99 ${msText(claim.p99)}, ${claim.n} claims${VARIANT}`,
    });
    const partsNote = (r: Summary) =>
      Object.entries(r.parts)
        .map(([n, d]) => `${n} ${msText(d.p95)}`)
        .join(', ');
    reportFigure({
      figure: 'marker → next agent started, p95, across 3 workers',
      measured: msText(across.handoff.p95),
      budget: `reported (one machine ${msText(single.handoff.p95)}, ${ratio.toFixed(1)}×)`,
      met: null,
      note: `p50 ${msText(across.handoff.p50)} (one machine ${msText(single.handoff.p50)}), p99 ${msText(across.handoff.p99)}, next agent busy p95 ${msText(across.busy.p95)}; parts p95: ${partsNote(across)}${VARIANT}`,
    });
    const engineRatio = across.engine.p95 / single.engine.p95;
    reportFigure({
      figure: 'the same less the time the next agent was busy, p95, across 3 workers',
      measured: msText(across.engine.p95),
      budget: `reported (one machine ${msText(single.engine.p95)}, ${engineRatio.toFixed(1)}×)`,
      met: null,
      note: `p50 ${msText(across.engine.p50)} (one machine ${msText(single.engine.p50)})${VARIANT}`,
    });
    reportFigure({
      figure: 'marker → next agent started, p95, one machine (same agents and tasks)',
      measured: msText(single.handoff.p95),
      budget: 'reported',
      met: null,
      note: `p50 ${msText(single.handoff.p50)}, p99 ${msText(single.handoff.p99)}, next agent busy p95 ${msText(single.busy.p95)}; parts p95: ${partsNote(single)}${VARIANT}`,
    });
    await writeJson(join(RESULTS, 'workers.json'), {
      at: new Date().toISOString(),
      node: process.version,
      cores: cpus().length,
      quick: QUICK,
      tasks: TASKS,
      rounds: ROUNDS,
      workMs: WORK_MS,
      repository: SHAPE,
      loadBefore,
      loadAfter,
      claim,
      runs: [single, across],
    });
    console.log(`\nwrote ${join('bench', 'results', 'workers.json')}`);
  } finally {
    await cluster.dispose();
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
