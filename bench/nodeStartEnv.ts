/**
 * NODE_EXTRA_CA_CERTS and the cost of starting Node. Node reads the file it names, and parses every
 * certificate in it, when a process starts, before any of the program runs, whether or not the
 * program ever opens a TLS connection. A machine that points it at the whole system bundle
 * (/etc/ssl/certs/ca-certificates.crt, about 140 certificates, as the machines these benchmarks ran
 * on do) gives every Node process about 45 ms more of CPU at start: `node -e ""` took 112 ms with it
 * and 65 ms without, and callgrind counted 507 M instructions against 93 M.
 *
 * A command that answers in a few hundred milliseconds, and an agent started for each stage, pay
 * that on such a machine only, and none of the pipeline's own code can change it. So the benchmarks
 * measure without it, as on a machine that does not set it, and say so, with what it costs here
 * where it is set (`describeExtraCaCerts`); the Task Master benchmark also runs the pipeline's
 * command and Node's floor with it, so both figures are printed.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export const EXTRA_CA_CERTS = 'NODE_EXTRA_CA_CERTS';

/** What the machine set, read once before `dropExtraCaCerts` removes it. */
const machineValue = process.env[EXTRA_CA_CERTS];

/** The machine's NODE_EXTRA_CA_CERTS, or undefined where it is not set. */
export function machineExtraCaCerts(): string | undefined {
  return machineValue === '' ? undefined : machineValue;
}

/**
 * Removes NODE_EXTRA_CA_CERTS from this process's environment, so every process the benchmark
 * starts (the engine's agents and git included) inherits the environment without it.
 */
export function dropExtraCaCerts(): void {
  delete process.env[EXTRA_CA_CERTS];
}

/** An environment for a child process with the machine's NODE_EXTRA_CA_CERTS put back, where it had one. */
export function withMachineExtraCaCerts(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const value = machineExtraCaCerts();
  return value === undefined ? env : { ...env, [EXTRA_CA_CERTS]: value };
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The median wall time of `node -e ""` with the given environment, over `runs` runs. */
function nodeFloorMs(env: NodeJS.ProcessEnv, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', ''], { env, stdio: 'ignore' });
    times.push(performance.now() - t);
  }
  return medianOf(times);
}

/**
 * One line for a benchmark's output: whether the machine sets NODE_EXTRA_CA_CERTS, and if so what it
 * costs each Node process here (alternating runs of `node -e ""` with and without it).
 */
export function describeExtraCaCerts(runs = 7): string {
  const value = machineExtraCaCerts();
  if (value === undefined) return `${EXTRA_CA_CERTS} is not set on this machine.`;
  const without: NodeJS.ProcessEnv = { ...process.env };
  delete without[EXTRA_CA_CERTS];
  const withIt = withMachineExtraCaCerts(without);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(nodeFloorMs(withIt, 1));
    b.push(nodeFloorMs(without, 1));
  }
  return `${EXTRA_CA_CERTS}=${value} is set on this machine: Node parses that file's certificates at every start (node -e "": ${medianOf(a).toFixed(0)} ms with it, ${medianOf(b).toFixed(0)} ms without, medians of ${runs}). The processes this benchmark starts run without it, as on a machine that does not set it.`;
}
