/**
 * The soak battery: trials one after another for `--minutes`, each on a fresh repository with a
 * fault schedule drawn from its seed (kill -9 of `pipeline run` at an event, of the agents' process
 * groups too, a SIGSTOP handover past the lease, stale git locks, a detached HEAD, a deleted
 * worktree, a person's commit on main), then a last run to the end and an audit from git. It prints
 * each trial's figures and the totals, writes them as JSON, and exits 1 when anything was lost,
 * merged twice or left unreachable; 3 when nothing was, but a trial found something else (a last
 * run that did not finish every task, unhealthy git, a replaced leader that did not stand down,
 * processes left behind); 0 when every trial was clean.
 *
 *   npm run soak -- --minutes 10 [--store file|postgres] [--seed S] [--out file.json] [--trial T] [--keep]
 *
 * `--store postgres` keeps every trial's state in PostgreSQL: one throwaway cluster for the soak
 * (Debian's `postgresql` binaries, as the tests use them), a database of its own for each trial,
 * the same faults plus a restart of the server in the middle of a run (soakStore.ts, soakPlan.ts).
 * `--seed` gives the sequence of trial seeds (default: from the clock, printed); `--trial T` runs the
 * one trial of seed T (a failed trial's seed, to replay it); `--keep` keeps every repository.
 * Not part of `npm test`: test/engine/soak/soakQuick.test.ts runs a few short trials there.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32 } from '../../test/support/prng';
import { requireBuild } from '../../test/engine/monitor/monitorKit';
import { planTrial } from './soakPlan';
import { openSoakStore, STORE_KINDS, storeMissing, type SoakStore, type SoakStoreKind } from './soakStore';
import { runTrial, type TrialResult } from './soakTrial';
import { summaryLine, totals, trialLine } from './soakTotals';

function usage(message: string): never {
  process.stderr.write(
    `soak: ${message}\nusage: npm run soak -- --minutes N [--store file|postgres] [--seed S] [--out file.json] [--trial T] [--keep]\n`,
  );
  process.exit(2);
}

function integer(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) usage(`${name} takes a whole number, not ${JSON.stringify(v)}.`);
  return Number(v);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      trial: { type: 'string' },
      keep: { type: 'boolean' },
      verbose: { type: 'boolean' },
      store: { type: 'string' },
    },
  });
  const kind = (values.store ?? 'file') as SoakStoreKind;
  if (!STORE_KINDS.includes(kind))
    usage(`--store takes ${STORE_KINDS.join(' or ')}, not ${JSON.stringify(values.store)}.`);
  const missing = storeMissing(kind);
  if (missing) {
    process.stderr.write(`soak: cannot run on ${kind}: ${missing}\n`);
    process.exit(3);
  }
  const trialSeed = integer(values.trial, '--trial');
  const minutes = integer(values.minutes, '--minutes');
  if (minutes === undefined && trialSeed === undefined) usage('give --minutes N (or --trial T to replay one trial).');
  const seed = integer(values.seed, '--seed') ?? (Date.now() % 2 ** 31) >>> 0;
  const out = resolve(
    values.out ?? join(__dirname, '..', 'results', kind === 'file' ? 'soak.json' : `soak-${kind}.json`),
  );
  requireBuild();
  const store = await openSoakStore(kind);
  // The cluster is a child of this process: an interrupted soak removes it too.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void store.close().finally(() => process.exit(130)));
  try {
    return await soak(store, values, { trialSeed, minutes, seed, out });
  } finally {
    await store.close();
  }
}

interface SoakArgs {
  trialSeed: number | undefined;
  minutes: number | undefined;
  seed: number;
  out: string;
}

async function soak(
  store: SoakStore,
  values: { keep?: boolean | undefined; verbose?: boolean | undefined },
  { trialSeed, minutes, seed, out }: SoakArgs,
): Promise<number> {
  const draw = mulberry32(seed);
  const nextSeed = () => Math.floor(draw() * 2 ** 31);
  const t0 = Date.now();
  const end = t0 + (minutes ?? 0) * 60_000;
  const trials: TrialResult[] = [];
  console.log(
    trialSeed !== undefined
      ? `soak: one trial, seed ${trialSeed}`
      : `soak: ${minutes} min on ${store.where}, seed ${seed} (replay with --seed ${seed}${store.kind === 'file' ? '' : ` --store ${store.kind}`}); load ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
  );
  do {
    const plan = planTrial(trialSeed ?? nextSeed(), { store: store.kind });
    const r = await runTrial(plan, {
      store,
      keep: values.keep ?? false,
      ...(values.verbose ? { onLine: (l: string) => console.log(`  ${l}`) } : {}),
    });
    trials.push(r);
    console.log(trialLine(r));
    for (const l of [...r.lost, ...r.duplicated, ...r.unreachable.map((u) => `unreachable: ${u}`), ...r.findings])
      console.log(`  ! ${l}`);
    if (r.lost.length + r.duplicated.length + r.unreachable.length + r.findings.length > 0 && !values.verbose)
      for (const l of r.log) console.log(`    ${l}`);
  } while (trialSeed === undefined && Date.now() < end);

  const s = totals(trialSeed ?? seed, trials, Date.now() - t0);
  const line = `${summaryLine(s)}; store ${store.kind}; load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
  console.log(line);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(
    out,
    JSON.stringify(
      {
        summary: line,
        store: store.kind,
        ...s,
        loadavg: loadavg(),
        trials: trials.map((t) => ({ ...t, log: t.log })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`written to ${out}`);
  if (s.lost + s.duplicated + s.unreachable > 0) return 1;
  return s.findings > 0 ? 3 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
