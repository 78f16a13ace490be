import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { CheckRequest, CheckRunner } from '../../../src/engine/ports/checkRunner';
import type { CheckAnswer, CheckFunction } from '../../support/twins/memoryChecks';

/**
 * The CheckRunner's contract, as its doc comments promise it, for any adapter: ShellCheckRunner
 * and the in-memory twin pass the same tests. Each check is a pair: the shell line the real adapter
 * runs, and the twin's answer for it.
 */
export interface CheckPair {
  shell: string;
  twin: CheckAnswer | CheckFunction;
}

export const CHECKS = {
  passes: { shell: 'echo all 12 tests passed', twin: { code: 0, output: 'all 12 tests passed\n' } },
  fails: { shell: 'echo "1 failing: parser" >&2; exit 3', twin: { code: 3, output: '1 failing: parser\n' } },
  // Reads its environment and its directory, as `npm test` in the worktree would.
  env: {
    shell: 'test "$PIPELINE_TASK_ID" = TASK-001 && test "$PIPELINE_ROLE" = implementer && test -f here.txt',
    twin: (req: CheckRequest) =>
      req.env.PIPELINE_TASK_ID === 'TASK-001' &&
      req.env.PIPELINE_ROLE === 'implementer' &&
      existsSync(join(req.cwd, 'here.txt'))
        ? 0
        : 1,
  },
  // Starts a helper that would write `late.txt` after a while, then hangs.
  hangs: {
    shell: '(sleep 1; touch late.txt) & sleep 30',
    twin: (req: CheckRequest, signal: AbortSignal) => {
      const t = setTimeout(() => void writeFile(join(req.cwd, 'late.txt'), ''), 1000);
      signal.addEventListener('abort', () => clearTimeout(t));
      return 'hang' as const;
    },
  },
} satisfies Record<string, CheckPair>;

export interface CheckSubject {
  readonly checks: CheckRunner;
  /** The command line that runs `pair` on this adapter. */
  command(name: string, pair: CheckPair): string;
}

export function checkRunnerConformance(name: string, make: () => CheckSubject): void {
  const withDir =
    (
      fn: (
        s: CheckSubject,
        req: (c: keyof typeof CHECKS, timeoutMs?: number) => CheckRequest,
        dir: string,
      ) => Promise<void>,
    ) =>
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'pipeline-check-'));
      const s = make();
      const req = (c: keyof typeof CHECKS, timeoutMs = 20_000): CheckRequest => ({
        command: s.command(c, CHECKS[c]),
        cwd: dir,
        env: { PIPELINE_TASK_ID: 'TASK-001', PIPELINE_ROLE: 'implementer' },
        timeoutMs,
        evidenceFile: join(dir, 'evidence', 'TASK-001', `implementation.attempt-1.${c}.log`),
        taskId: 'TASK-001',
        attempt: 1,
      });
      try {
        await fn(s, req, dir);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

  void describe(`CheckRunner conformance: ${name}`, () => {
    void test(
      'a check that exits 0 passes; its output is kept as evidence, under a header naming what ran where',
      withDir(async (s, req, dir) => {
        const r = req('passes');
        const res = await s.checks.run(r);
        assert.deepEqual([res.passed, res.code, res.timedOut], [true, 0, false]);
        assert.ok(res.durationMs >= 0);
        const evidence = await readFile(r.evidenceFile, 'utf8');
        const [first, second, ...rest] = evidence.split('\n');
        assert.equal(first, `$ ${r.command}`);
        assert.match(second!, new RegExp(`^# in ${dir}, \\d{4}-\\d\\d-\\d\\dT.*, exit 0$`));
        assert.match(rest.join('\n'), /all 12 tests passed/);
      }),
    );

    void test(
      'a check that exits non-zero fails with its code; its output, stderr too, is evidence',
      withDir(async (s, req) => {
        const r = req('fails');
        const res = await s.checks.run(r);
        assert.deepEqual([res.passed, res.code, res.timedOut], [false, 3, false]);
        const evidence = await readFile(r.evidenceFile, 'utf8');
        assert.match(evidence, /, exit 3\n/);
        assert.match(evidence, /1 failing: parser/);
      }),
    );

    void test(
      'a check runs in the worktree with the environment it is given',
      withDir(async (s, req, dir) => {
        assert.equal((await s.checks.run(req('env'))).passed, false, 'here.txt is not there yet');
        await writeFile(join(dir, 'here.txt'), '');
        assert.equal((await s.checks.run(req('env'))).passed, true);
      }),
    );

    void test(
      'a check that outlives its time limit is killed with what it started, and fails as timed out',
      withDir(async (s, req, dir) => {
        const r = req('hangs', 300);
        const res = await s.checks.run(r);
        assert.deepEqual([res.passed, res.code, res.timedOut], [false, null, true]);
        assert.match(await readFile(r.evidenceFile, 'utf8'), /, killed after 0 s\n/);
        // The helper would have written late.txt one second after the start.
        await new Promise((res) => setTimeout(res, 1500));
        assert.equal(existsSync(join(dir, 'late.txt')), false, 'what the check started was killed too');
      }),
    );
  });
}
