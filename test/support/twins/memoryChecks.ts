import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CheckRequest, CheckResult, CheckRunner } from '../../../src/engine/ports/checkRunner';

/**
 * The CheckRunner's in-memory twin: a check's outcome comes from a table (command → answer) or a
 * function, and nothing is run.
 *
 * What it models: an answer is an exit code (0 passes), `{ code, output }`, or `'hang'` (it runs
 * until its time limit); a function may answer later and is given an AbortSignal that fires at
 * the time limit (`req.timeoutMs`, on the real clock). A check that does not answer in time fails
 * with `timedOut` and no code, as ShellCheckRunner kills it. A command missing from the table fails
 * as `sh` would (127, "not found"). The evidence file is written in ShellCheckRunner's format
 * (`$ <command>`, a `# in <cwd>, <time>, <ending>` line, then the output), its directory created.
 * Every request is kept in `runs`.
 *
 * What it does not model: the environment and the working directory (a function may read
 * `req.cwd` and `req.env` itself), a process group, output arriving in pieces.
 */

export type CheckAnswer = number | { code: number; output?: string } | 'hang';

export type CheckFunction = (req: CheckRequest, signal: AbortSignal) => CheckAnswer | Promise<CheckAnswer>;

export class MemoryChecks implements CheckRunner {
  /** Every request, oldest first. */
  readonly runs: CheckRequest[] = [];

  constructor(private readonly answers: Record<string, CheckAnswer | CheckFunction> | CheckFunction = {}) {}

  async run(req: CheckRequest): Promise<CheckResult> {
    this.runs.push(req);
    const started = Date.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => {
        abort.abort();
        r('timeout');
      }, req.timeoutMs);
    });
    type Outcome = Exclude<CheckAnswer, 'hang'> | 'timeout';
    const answered = Promise.resolve(this.answer(req, abort.signal)).then((a): Outcome | Promise<Outcome> =>
      a === 'hang' ? limit : a,
    );
    const outcome: Outcome = await Promise.race([answered, limit]).finally(() => clearTimeout(timer));
    const timedOut = outcome === 'timeout';
    let code: number | null = null;
    let output = '';
    if (typeof outcome === 'number') code = outcome;
    else if (outcome !== 'timeout') {
      code = outcome.code;
      output = outcome.output ?? '';
    }
    const ending = timedOut ? `killed after ${Math.round(req.timeoutMs / 1000)} s` : `exit ${code}`;
    await mkdir(dirname(req.evidenceFile), { recursive: true });
    await writeFile(
      req.evidenceFile,
      `$ ${req.command}\n# in ${req.cwd}, ${new Date(started).toISOString()}, ${ending}\n${output}`,
    );
    return { passed: code === 0 && !timedOut, code, timedOut, durationMs: Date.now() - started };
  }

  private answer(req: CheckRequest, signal: AbortSignal): CheckAnswer | Promise<CheckAnswer> {
    if (typeof this.answers === 'function') return this.answers(req, signal);
    const a = this.answers[req.command];
    if (a === undefined) return { code: 127, output: `sh: 1: ${req.command.split(' ')[0] ?? ''}: not found\n` };
    return typeof a === 'function' ? a(req, signal) : a;
  }
}
