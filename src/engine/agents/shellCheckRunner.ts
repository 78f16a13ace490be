import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CheckRequest, CheckResult, CheckRunner } from '../ports/checkRunner';

/**
 * Runs a stage's check through `sh -c` in the worktree, in a process group of its own so a timeout
 * kills the check and everything it started. Its output, stdout and stderr interleaved as they
 * came, is kept as evidence whether it passed or not.
 */
export class ShellCheckRunner implements CheckRunner {
  async run(req: CheckRequest): Promise<CheckResult> {
    const started = Date.now();
    const { code, output, timedOut } = await new Promise<{ code: number | null; output: string; timedOut: boolean }>(
      (resolve) => {
        const child = spawn('sh', ['-c', req.command], {
          cwd: req.cwd,
          env: { ...process.env, ...req.env },
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const chunks: Buffer[] = [];
        let killed = false;
        child.stdout.on('data', (c: Buffer) => chunks.push(c));
        child.stderr.on('data', (c: Buffer) => chunks.push(c));
        const timer = setTimeout(() => {
          killed = true;
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }, req.timeoutMs);
        child.on('error', (e) => {
          clearTimeout(timer);
          resolve({ code: null, output: `cannot run the check: ${e.message}`, timedOut: false });
        });
        child.on('close', (c) => {
          clearTimeout(timer);
          resolve({ code: killed ? null : c, output: Buffer.concat(chunks).toString('utf8'), timedOut: killed });
        });
      },
    );
    const ending = timedOut ? `killed after ${Math.round(req.timeoutMs / 1000)} s` : `exit ${code}`;
    await mkdir(dirname(req.evidenceFile), { recursive: true });
    await writeFile(
      req.evidenceFile,
      `$ ${req.command}\n# in ${req.cwd}, ${new Date(started).toISOString()}, ${ending}\n${output}`,
    );
    return { passed: code === 0 && !timedOut, code, timedOut, durationMs: Date.now() - started };
  }
}
