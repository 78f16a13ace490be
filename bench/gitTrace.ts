/**
 * Where a process's git time goes, when that process is not this one (observeGit sees only
 * in-process git): a `git` shim first on its PATH runs the real git and notes each command's name
 * and wall time in the file named by BENCH_GIT_LOG (the engine passes every variable but GIT_* on to
 * git, so the name survives). Used by `workers.bench.ts --trace-git` for the workers and the
 * coordinator; their agents' git commands (the scripted agent's add and commit) pass through it
 * too. The shim costs two `date` processes per command, so figures taken with it run a little slow.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pct } from './workersHandoffs';

export interface GitCommandTime {
  command: string;
  n: number;
  totalMs: number;
  p50: number;
  p95: number;
}

/** Writes the shim into `<dir>/bin/git`; returns the directory to put first on PATH. */
export async function writeGitShim(dir: string): Promise<string> {
  const real = (await promisify(execFile)('sh', ['-c', 'command -v git'])).stdout.trim();
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const shim = join(bin, 'git');
  await writeFile(
    shim,
    `#!/bin/sh
# The subcommand: the first argument that is not an option (nor the value of -c or -C).
cmd=; skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$a" in -c|-C) skip=1 ;; -*) ;; *) cmd=$a; break ;; esac
done
s=$(date +%s%N)
${JSON.stringify(real)} "$@"
rc=$?
e=$(date +%s%N)
[ -n "$BENCH_GIT_LOG" ] && printf '%s %s\\n' "$cmd" "$(( (e - s) / 1000 ))" >> "$BENCH_GIT_LOG"
exit $rc
`,
  );
  await chmod(shim, 0o755);
  return bin;
}

/** The commands noted in `log`, by total time. */
export async function gitCommandTimes(log: string): Promise<GitCommandTime[]> {
  const by = new Map<string, number[]>();
  for (const line of (await readFile(log, 'utf8').catch(() => '')).split('\n')) {
    const [command, us] = line.split(' ');
    if (!command || !us) continue;
    let xs = by.get(command);
    if (!xs) by.set(command, (xs = []));
    xs.push(Number(us) / 1000);
  }
  return [...by]
    .map(([command, xs]) => ({
      command,
      n: xs.length,
      totalMs: xs.reduce((a, b) => a + b, 0),
      p50: pct(xs, 50),
      p95: pct(xs, 95),
    }))
    .sort((a, b) => b.totalMs - a.totalMs);
}
