/**
 * Task Master benchmark: the time and peak memory to pick the next task on one large imported Task
 * Master file, whole process, `pipeline` against Task Master's own `task-master next`. Budgets
 * (shared/engineering.md): at most 1/20 of its time and 1/4 of its peak memory.
 *
 * One tagged tasks.json is generated (test/engine/import/generateTaskMaster.ts: 2 000 tasks, most
 * with subtasks, about three dependencies each, a spread of statuses and priorities). Task Master
 * reads it where it keeps its tasks (`.taskmaster/tasks/tasks.json` under the directory it runs
 * in); the pipeline imports it once with `pipeline task import` into a temporary repository with one
 * scripted agent per role. Then, alternating so both share the machine's conditions, each command
 * runs as a whole process, from spawn to exit:
 *
 * - `node dist/cli.js run --dry`: what the scheduler would do now (the tasks that would enter the
 *   pipeline and the agents it would start), read from the pipeline's own state;
 * - `node dist/cli.js status` (and, on its own, the first one after the import) and
 *   `node dist/cli.js next` where the build has it;
 * - `task-master next` (its text output) and `task-master next --format json`, run offline with
 *   no API keys (`next` is local; Task Master's once-an-hour update check is made by the warm-up
 *   run and cached);
 * - `node -e ""`: the floor, starting Node and doing nothing.
 *
 * Task Master is installed for the benchmark only, outside the project, on first run (cached):
 * `npm install --prefix $TASK_MASTER_PREFIX task-master-ai@<pinned>` (default prefix
 * <tmp>/tm-bench). It is never a dependency of the project. If it cannot be installed or run, the
 * benchmark says so and still reports the pipeline's figure.
 *
 * Task Master 0.43 refuses a file in which a task has no priority ("Invalid task priority:
 * undefined"); files it writes itself always have one (it defaults to medium). The generator leaves
 * it out on a few tasks, as older files do, so those get "medium" here, in the file both tools read.
 *
 * Where the machine sets NODE_EXTRA_CA_CERTS, the commands run without it (every Node process
 * parses that file's certificates at start, about 45 ms here; see bench/nodeStartEnv.ts), and
 * Node's floor and `pipeline next` also run with it, so the figure in this machine's own
 * environment is printed and judged too.
 *
 * Peak memory is the process's peak resident set, as GNU time reports it (`/usr/bin/time -f %M`);
 * without GNU time, only times are reported.
 *
 * The only file written in the repository is bench/results/taskmaster.json.
 *
 * Run: node --expose-gc --import tsx bench/taskmaster.bench.ts [--quick] [--tasks N] [--runs N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { initRepo } from '../src/engine/git/initRepo';
import { generateTaskMasterFile } from '../test/engine/import/generateTaskMaster';
import { reportFigure } from './figures';
import { describeExtraCaCerts, EXTRA_CA_CERTS, machineExtraCaCerts, withMachineExtraCaCerts } from './nodeStartEnv';

const QUICK = process.argv.includes('--quick');
const TASKS = numberArg('--tasks', QUICK ? 500 : 2_000);
const RUNS = numberArg('--runs', QUICK ? 3 : 7);
/** The version measured; a newer one may read files differently, so it is chosen, not floating. */
const TASK_MASTER_VERSION = '0.43.1';
const TASK_MASTER_PREFIX = process.env.TASK_MASTER_PREFIX ?? join(tmpdir(), 'tm-bench');

const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

/**
 * The environment for the measured commands: no API keys, no git overrides, no colours, and no
 * NODE_EXTRA_CA_CERTS (bench/nodeStartEnv.ts: where a machine sets it, every Node process parses
 * its certificates at start; the two series marked "with NODE_EXTRA_CA_CERTS" put it back).
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/API_KEY|_TOKEN$|^GIT_/i.test(k) || k === EXTRA_CA_CERTS) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', FORCE_COLOR: '0', GIT_TERMINAL_PROMPT: '0' };
}

interface Run {
  ms: number;
  /** Peak resident memory of the process (and any it waited for), in MB; undefined where it cannot be read. */
  peakMb: number | undefined;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * GNU time reports a child's peak resident memory (getrusage's ru_maxrss, which covers the processes
 * it waited for too): the whole process's figure, which Node cannot read of a child it spawns.
 */
const GNU_TIME = ['/usr/bin/time', '/bin/time'].find(
  (t) => existsSync(t) && spawnSync(t, ['-f', '%M', 'true'], { encoding: 'utf8' }).status === 0,
);

function timed(cmd: string, args: string[], cwd: string, env = cleanEnv(), timeoutMs = 120_000): Run {
  const memFile = GNU_TIME ? join(tmpdir(), `tm-bench-mem-${process.pid}`) : undefined;
  const [file, argv] = GNU_TIME && memFile ? [GNU_TIME, ['-f', '%M', '-o', memFile, cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const r = spawnSync(file, argv, {
    cwd,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  const ms = performance.now() - t0;
  let peakMb: number | undefined;
  if (memFile) {
    try {
      const kb = Number(readFileSync(memFile, 'utf8').trim().split('\n').pop());
      peakMb = Number.isFinite(kb) && kb > 0 ? kb / 1024 : undefined;
    } catch {
      peakMb = undefined;
    }
  }
  return {
    ms,
    peakMb,
    code: r.status,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''),
  };
}

function lastLines(text: string, n = 6): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

interface Series {
  name: string;
  command: string;
  run: () => Run;
  runs: number[];
  peaksMb: number[];
  picked: string;
  error?: string;
}

/** The budgets (shared/engineering.md): a read-only question about the next task, whole process. */
const BUDGET_TIME_FRACTION = 1 / 20;
const BUDGET_MEMORY_FRACTION = 1 / 4;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Installs Task Master outside the project (once; later runs reuse it); returns its binary or why not. */
function taskMasterBinary(): { bin: string } | { error: string } {
  const bin = join(TASK_MASTER_PREFIX, 'node_modules', '.bin', 'task-master');
  if (existsSync(bin)) return { bin };
  console.log(
    `installing task-master-ai@${TASK_MASTER_VERSION} into ${TASK_MASTER_PREFIX} (for this benchmark only; cached for later runs)…`,
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(
    npm,
    [
      'install',
      '--prefix',
      TASK_MASTER_PREFIX,
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `task-master-ai@${TASK_MASTER_VERSION}`,
    ],
    {
      encoding: 'utf8',
      timeout: 15 * 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  if (r.status !== 0 || !existsSync(bin)) {
    return {
      error: `npm install task-master-ai@${TASK_MASTER_VERSION} failed (exit ${r.status ?? r.signal ?? r.error?.message}): ${lastLines(`${r.stdout ?? ''}${r.stderr ?? ''}`, 4) || 'no output'}`,
    };
  }
  return { bin };
}

async function taskMasterVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(
      await readFile(join(TASK_MASTER_PREFIX, 'node_modules', 'task-master-ai', 'package.json'), 'utf8'),
    ) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown version';
  } catch {
    return 'unknown version';
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) {
    console.error(`${CLI} is missing: build it first with \`node scripts/build.mjs\`.`);
    process.exit(1);
  }
  const base = await mkdtemp(join(tmpdir(), 'pipeline-tm-bench-'));
  try {
    // The file: generated, with Task Master's default priority where the generator left none.
    const file = generateTaskMasterFile({ tasks: TASKS, seed: 1 });
    let filled = 0;
    let subtasks = 0;
    for (const tag of Object.values(file)) {
      for (const t of tag.tasks) {
        subtasks += t.subtasks.length;
        if (t.priority === undefined) {
          t.priority = 'medium';
          filled++;
        }
      }
    }
    const tmDir = join(base, 'taskmaster-project');
    const tasksJson = join(tmDir, '.taskmaster', 'tasks', 'tasks.json');
    await mkdir(join(tmDir, '.taskmaster', 'tasks'), { recursive: true });
    const text = `${JSON.stringify(file, null, 2)}\n`;
    await writeFile(tasksJson, text);
    const masterTasks = file.master?.tasks.length ?? 0;
    const masterSubtasks = file.master?.tasks.reduce((n, t) => n + t.subtasks.length, 0) ?? 0;

    // The pipeline: a repository, one scripted agent per role, the file imported.
    const repo = join(base, 'repo');
    await initRepo(repo);
    const init = timed(process.execPath, [CLI, 'init', '--preset', 'scripted'], repo);
    if (init.code !== 0) throw new Error(`pipeline init failed:\n${init.stdout}${init.stderr}`);
    const imp = timed(process.execPath, [CLI, 'task', 'import', tasksJson], repo);
    if (imp.code !== 0) throw new Error(`pipeline task import failed:\n${imp.stdout}${imp.stderr}`);
    const imported = /Imported (\d+) task/.exec(imp.stdout)?.[1] ?? '?';

    console.log(
      `Task Master next vs pipeline run --dry (Node ${process.version}, ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}${QUICK ? ', quick' : ''})`,
    );
    console.log(describeExtraCaCerts());
    console.log(
      `file: ${(text.length / 1024 / 1024).toFixed(1)} MB, ${masterTasks} tasks + ${masterSubtasks} subtasks in master (${subtasks} subtasks in all tags); priority filled in on ${filled} task(s); pipeline imported ${imported} task(s) in ${imp.ms.toFixed(0)} ms`,
    );

    // The first command after the import, on its own: nothing of the pipeline's is in the page
    // cache from an earlier run of it but the import's own writes.
    const firstStatus = timed(process.execPath, [CLI, 'status'], repo);
    const floor: Series = {
      name: 'node -e "" (process start, the floor)',
      command: 'node -e ""',
      run: () => timed(process.execPath, ['-e', ''], repo),
      runs: [],
      peaksMb: [],
      picked: '-',
    };
    const pipeline: Series = {
      name: 'pipeline run --dry',
      command: 'node dist/cli.js run --dry',
      run: () => timed(process.execPath, [CLI, 'run', '--dry'], repo),
      runs: [],
      peaksMb: [],
      picked: '',
    };
    const status: Series = {
      name: 'pipeline status',
      command: 'node dist/cli.js status',
      run: () => timed(process.execPath, [CLI, 'status'], repo),
      runs: [],
      peaksMb: [],
      picked: '-',
    };
    const ours: Series[] = [pipeline, status];
    // `pipeline next`, where this build has it: its help lists the command (`next --help` alone
    // proves nothing, since an unknown command with --help prints the program's help and exits 0).
    if (/^\s+next\b/m.test(timed(process.execPath, [CLI, '--help'], repo).stdout)) {
      ours.push({
        name: 'pipeline next',
        command: 'node dist/cli.js next',
        run: () => timed(process.execPath, [CLI, 'next'], repo),
        runs: [],
        peaksMb: [],
        picked: '',
      });
    }
    // Where the machine sets NODE_EXTRA_CA_CERTS, Node's floor and `pipeline next` with it too, so
    // the figures with the machine's own environment are printed beside those without it.
    const withCerts: Series[] = [];
    if (machineExtraCaCerts() !== undefined) {
      const env = withMachineExtraCaCerts(cleanEnv());
      withCerts.push(
        {
          name: `node -e "" (with ${EXTRA_CA_CERTS})`,
          command: 'node -e ""',
          run: () => timed(process.execPath, ['-e', ''], repo, env),
          runs: [],
          peaksMb: [],
          picked: '-',
        },
        {
          name: `pipeline next (with ${EXTRA_CA_CERTS})`,
          command: 'node dist/cli.js next',
          run: () => timed(process.execPath, [CLI, 'next'], repo, env),
          runs: [],
          peaksMb: [],
          picked: '',
        },
      );
    }
    const series: Series[] = [floor, ...ours, ...withCerts];
    const tm = taskMasterBinary();
    let tmNote = '';
    let tmText: Series | undefined;
    let tmJson: Series | undefined;
    if ('error' in tm) {
      tmNote = `Task Master could not be installed here: ${tm.error}`;
    } else {
      const bin = tm.bin;
      tmText = {
        name: `task-master next (${await taskMasterVersion()})`,
        command: 'task-master next',
        run: () => timed(bin, ['next'], tmDir),
        runs: [],
        peaksMb: [],
        picked: '',
      };
      tmJson = {
        name: 'task-master next --format json',
        command: 'task-master next --format json',
        run: () => timed(bin, ['next', '--format', 'json'], tmDir),
        runs: [],
        peaksMb: [],
        picked: '',
      };
      // Warm-up: loads its modules into the page cache, makes its update check (cached an hour),
      // and shows whether it can run here at all.
      const warm = timed(tm.bin, ['next', '--format', 'json'], tmDir);
      let picked: string | undefined;
      try {
        // It prints a notice box after the JSON: read the JSON object only.
        const out = warm.stdout;
        const j = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('\n}') + 2)) as {
          task?: { id?: unknown; title?: unknown } | null;
        };
        picked = j.task ? `${String(j.task.id)} (${String(j.task.title)})` : 'none';
      } catch {
        picked = undefined;
      }
      if (warm.code !== 0 || picked === undefined) {
        tmNote = `Task Master is installed but \`task-master next\` did not run here (exit ${warm.code}): ${lastLines(warm.stdout + warm.stderr) || 'no output'}`;
        tmText = undefined;
        tmJson = undefined;
      } else {
        tmText.picked = picked;
        tmJson.picked = picked;
        series.push(tmText, tmJson);
      }
    }
    pipeline.run();

    for (let i = 0; i < RUNS; i++) {
      for (const s of series) {
        const r = s.run();
        if (r.code !== 0) {
          s.error = `exit ${r.code}: ${lastLines(r.stdout + r.stderr)}`;
          continue;
        }
        s.runs.push(r.ms);
        if (r.peakMb !== undefined) s.peaksMb.push(r.peakMb);
        if (s === pipeline && !s.picked) {
          const start = /would start (\S+) \((\S+)\) on ([^:]+): (.*)/.exec(r.stdout);
          s.picked = start ? `${start[3]} (${start[4]}; ${start[1]})` : lastLines(r.stdout, 1);
        }
        if (s.command === 'node dist/cli.js next' && !s.picked) s.picked = r.stdout.split('\n')[0] ?? '';
      }
    }

    console.log('');
    const head = `${'whole process'.padEnd(42)}${'runs'.padStart(5)}${'median ms'.padStart(11)}${'min ms'.padStart(9)}${'max ms'.padStart(9)}${'peak MB'.padStart(9)}   picks`;
    console.log(head);
    console.log('-'.repeat(head.length + 20));
    const peak = (s: Series): number | undefined => (s.peaksMb.length ? Math.max(...s.peaksMb) : undefined);
    for (const s of series) {
      if (!s.runs.length) {
        console.log(`${s.name.padEnd(42)}  failed: ${s.error ?? 'no run'}`);
        continue;
      }
      console.log(
        `${s.name.padEnd(42)}${String(s.runs.length).padStart(5)}${median(s.runs).toFixed(0).padStart(11)}${Math.min(
          ...s.runs,
        )
          .toFixed(0)
          .padStart(9)}${Math.max(...s.runs)
          .toFixed(0)
          .padStart(
            9,
          )}${(peak(s)?.toFixed(0) ?? '-').padStart(9)}   ${s.picked}${s.error ? `  (some runs failed: ${s.error})` : ''}`,
      );
    }
    console.log(
      `first pipeline status after the import: ${firstStatus.ms.toFixed(0)} ms, peak ${firstStatus.peakMb?.toFixed(0) ?? '-'} MB${firstStatus.code === 0 ? '' : ` (exit ${firstStatus.code})`}`,
    );
    const verdicts: { what: string; ok: boolean }[] = [];
    if (tmNote) console.log(`\n${tmNote}\nOnly the pipeline's figures are reported.`);
    else if (tmText?.runs.length) {
      const tmMs = median(tmText.runs);
      const tmPeak = peak(tmText);
      console.log(
        `\nagainst task-master next (median ${tmMs.toFixed(0)} ms, peak ${tmPeak?.toFixed(0) ?? '-'} MB), whole process:`,
      );
      const line = (name: string, ms: number, mb: number | undefined): void => {
        const timeOk = ms <= tmMs * BUDGET_TIME_FRACTION;
        const memOk = mb !== undefined && tmPeak !== undefined ? mb <= tmPeak * BUDGET_MEMORY_FRACTION : undefined;
        verdicts.push({ what: `${name} time`, ok: timeOk });
        if (memOk !== undefined) verdicts.push({ what: `${name} memory`, ok: memOk });
        const note = `${ms.toFixed(0)} ms vs ${tmMs.toFixed(0)} ms, ${mb?.toFixed(0) ?? '-'} MB vs ${tmPeak?.toFixed(0) ?? '-'} MB; ${TASKS} tasks${QUICK ? ', quick' : ''}`;
        reportFigure({
          figure: `${name}, whole process: time against task-master next`,
          measured: `1/${(tmMs / ms).toFixed(1)}`,
          budget: `≤ 1/${1 / BUDGET_TIME_FRACTION}`,
          met: timeOk,
          note,
        });
        reportFigure({
          figure: `${name}, whole process: peak memory against task-master next`,
          measured: mb !== undefined && tmPeak !== undefined ? `1/${(tmPeak / mb).toFixed(1)}` : 'not measured',
          budget: `≤ 1/${1 / BUDGET_MEMORY_FRACTION}`,
          met: memOk ?? null,
          note,
        });
        console.log(
          `  ${name.padEnd(32)} time 1/${(tmMs / ms).toFixed(1)} (budget ≤ 1/${1 / BUDGET_TIME_FRACTION}) ${timeOk ? 'OK' : 'OVER BUDGET'}   memory ${
            mb !== undefined && tmPeak !== undefined
              ? `1/${(tmPeak / mb).toFixed(1)} (budget ≤ 1/${1 / BUDGET_MEMORY_FRACTION}) ${memOk ? 'OK' : 'OVER BUDGET'}`
              : 'not measured (no GNU time here)'
          }`,
        );
      };
      for (const s of [...ours, ...withCerts.slice(1)]) if (s.runs.length) line(s.name, median(s.runs), peak(s));
      line('first pipeline status', firstStatus.ms, firstStatus.peakMb);
    }
    console.log(
      "They answer a little differently: task-master next names one task (in-progress parents' subtasks first, then by priority and dependency count); run --dry lists the tasks whose prerequisites are merged and the agent each free stage would start.",
    );

    const resultsDir = join(__dirname, 'results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(
      join(resultsDir, 'taskmaster.json'),
      `${JSON.stringify(
        {
          at: new Date().toISOString(),
          node: process.version,
          cores: cpus().length,
          load1: loadavg()[0],
          quick: QUICK,
          file: {
            bytes: text.length,
            masterTasks,
            masterSubtasks,
            subtasksAllTags: subtasks,
            priorityFilled: filled,
            pipelineImported: Number(imported) || null,
            importMs: imp.ms,
          },
          taskMaster: tmNote
            ? { available: false, note: tmNote }
            : { available: true, version: await taskMasterVersion(), prefix: TASK_MASTER_PREFIX },
          budgets: { timeFraction: BUDGET_TIME_FRACTION, memoryFraction: BUDGET_MEMORY_FRACTION },
          firstStatus: { ms: firstStatus.ms, peakMb: firstStatus.peakMb ?? null, code: firstStatus.code },
          verdicts,
          series: series.map((s) => ({
            name: s.name,
            command: s.command,
            runs: s.runs,
            medianMs: s.runs.length ? median(s.runs) : null,
            minMs: s.runs.length ? Math.min(...s.runs) : null,
            peaksMb: s.peaksMb,
            picked: s.picked,
            error: s.error ?? null,
          })),
        },
        null,
        2,
      )}\n`,
    );
    console.log(`\nwrote ${join('bench', 'results', 'taskmaster.json')}`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

void main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
