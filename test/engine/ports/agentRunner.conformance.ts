import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { resolveCommand } from '../../../src/engine/agents/commandTemplate';
import { shellQuote } from '../../../src/engine/agents/shellWords';
import { findMarker } from '../../../src/engine/agents/completionMarker';
import { TASK_DIR, taskFileName } from '../../../src/engine/agents/taskFile';
import type { AgentRunner, RunExit, RunRequest } from '../../../src/engine/ports/agentRunner';
import type { ScriptedAgent } from '../../support/twins/memoryRunner';
import { until, within } from '../../support/waiting';

/**
 * The AgentRunner's contract, as its doc comments promise it, for any runner: ProcessRunner,
 * TmuxRunner and the in-memory twin pass the same tests. Each behaviour is a pair: a shell line
 * for the runners that start real commands, and the twin's scripted agent that does the same.
 * What a behaviour did is read from the disk (the worktree, the task file, the log), the same way
 * for every runner.
 */
export interface Behaviour {
  /** For real runners: the agent's command is `sh -c <shell>`, with PIPELINE_* in its environment. */
  shell: string;
  /** The twin's equivalent. */
  twin: ScriptedAgent;
}

export interface RunnerSubject {
  readonly runner: AgentRunner;
  /** The agent command (a template) that runs behaviour `name` on this runner. */
  command(name: string, b: Behaviour): string;
  /** The runner a restarted monitor would make: the same run directory, session or host. */
  restarted(): AgentRunner;
  cleanup(): Promise<void>;
}

export { within };

const read = (f: string) => readFile(f, 'utf8').catch(() => '');

/** Every behaviour the suite runs, by name. */
export const BEHAVIOURS = {
  exit0: { shell: 'exit 0', twin: () => 0 },
  exit3: { shell: 'exit 3', twin: () => 3 },
  output: {
    shell: 'echo out-line; echo err-line >&2',
    twin: async (_req, io) => {
      await io.log('out-line');
      await io.log('err-line');
    },
  },
  where: {
    shell: 'printf "%s %s %s\\n" "$PIPELINE_TASK_ID" "$PIPELINE_ROLE" "$(pwd)" > where.txt',
    twin: async (req, io) => {
      const env = req.command.env;
      await io.write('where.txt', `${env.PIPELINE_TASK_ID} ${env.PIPELINE_ROLE} ${await realpath(req.worktree)}\n`);
    },
  },
  marker: {
    shell: 'echo "done"; printf "\\n## Status: COMPLETED\\n" >> "$PIPELINE_TASK_FILE"',
    twin: async (_req, io) => {
      await io.log('done');
      await io.append('## Status: COMPLETED');
    },
  },
  // Starts a helper that writes a heartbeat until it is killed, then waits for it.
  heartbeat: {
    shell: '(while :; do date +%s%N >> beat; sleep 0.05; done) & echo started > started.txt; wait',
    twin: async (_req, io) => {
      await io.write('started.txt', 'started\n');
      for (let n = 0; ; n++) {
        await io.write('beat', `${n}\n`);
        await io.sleep(50);
      }
    },
  },
} satisfies Record<string, Behaviour>;

export function agentRunnerConformance(name: string, make: (dir: string) => Promise<RunnerSubject>): void {
  interface Ctx {
    dir: string;
    s: RunnerSubject;
    req: (behaviour: keyof typeof BEHAVIOURS | { command: string }, attempt?: number) => Promise<RunRequest>;
  }
  const withRunner = (fn: (c: Ctx) => Promise<void>) => async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-runner-'));
    const s = await make(dir);
    const worktree = join(dir, 'wt');
    const req: Ctx['req'] = async (b, attempt = 1) => {
      const taskFile = join(worktree, TASK_DIR, taskFileName('TASK-001', attempt));
      await mkdir(join(worktree, TASK_DIR), { recursive: true });
      await writeFile(taskFile, '# TASK-001: the task\n');
      const command = typeof b === 'string' ? s.command(b, BEHAVIOURS[b]) : b.command;
      return {
        agentId: 'implementer',
        taskId: 'TASK-001',
        attempt,
        role: 'implementer',
        worktree,
        taskFile,
        command: resolveCommand(
          command,
          { taskFile, taskId: 'TASK-001', worktree, role: 'implementer' },
          {
            scriptedAgent: '',
          },
        ),
        logFile: join(dir, 'logs', 'agents', 'implementer.log'),
      };
    };
    try {
      await fn({ dir, s, req });
    } finally {
      await s.runner.dispose();
      await s.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  };
  const exitOf = (p: Promise<RunExit>) => within('the command ending', 20_000, p);

  void describe(`AgentRunner conformance: ${name}`, () => {
    void test(
      "exited settles with the command's exit code",
      withRunner(async ({ s, req }) => {
        const ok = await s.runner.start(await req('exit0'));
        assert.equal(ok.agentId, 'implementer');
        assert.equal(ok.attempt, 1);
        const e0 = await exitOf(ok.exited);
        assert.deepEqual([e0.code, e0.signal, e0.startError], [0, null, undefined]);
        const failed = await s.runner.start(await req('exit3', 2));
        const e3 = await exitOf(failed.exited);
        assert.deepEqual([e3.code, e3.signal, e3.startError], [3, null, undefined]);
      }),
    );

    void test(
      "the command's output goes to the agent's log file, which is appended to",
      withRunner(async ({ s, req }) => {
        const r = await req('output');
        await exitOf((await s.runner.start(r)).exited);
        await exitOf((await s.runner.start(await req('marker', 2))).exited);
        const log = await read(r.logFile);
        assert.match(log, /out-line/);
        assert.match(log, /err-line/, 'stderr too');
        assert.match(log, /done/, 'a later run appends');
      }),
    );

    void test(
      'the command runs in the worktree with PIPELINE_TASK_ID and PIPELINE_ROLE set',
      withRunner(async ({ s, req }) => {
        const r = await req('where');
        await exitOf((await s.runner.start(r)).exited);
        assert.equal(await read(join(r.worktree, 'where.txt')), `TASK-001 implementer ${await realpath(r.worktree)}\n`);
      }),
    );

    void test(
      'a marker the command appends is in its task file',
      withRunner(async ({ s, req }) => {
        const r = await req('marker');
        const e = await exitOf((await s.runner.start(r)).exited);
        assert.equal(e.code, 0);
        assert.deepEqual(findMarker(await read(r.taskFile)), { kind: 'completed' });
      }),
    );

    void test(
      'a program that does not exist is a start error, reported through exited',
      withRunner(async ({ s, req }) => {
        const h = await s.runner.start(await req({ command: 'no-such-agent-program {taskFile}' }));
        const e = await exitOf(h.exited);
        assert.match(e.startError ?? '', /no-such-agent-program/);
      }),
    );

    void test(
      'stop ends the command and whatever it started; exited settles',
      withRunner(async ({ s, req }) => {
        const r = await req('heartbeat');
        const h = await s.runner.start(r);
        const beat = join(r.worktree, 'beat');
        await until('the helper beating', 20_000, async () => existsSync(beat) && (await read(beat)) !== '');
        await within('stop', 20_000, h.stop());
        const e = await exitOf(h.exited);
        assert.equal(e.startError, undefined);
        assert.ok(e.code !== 0, `a stopped command does not count as a success: ${JSON.stringify(e)}`);
        const after = await read(beat);
        // The helper beat every 50 ms: six periods without a beat mean it is gone.
        await new Promise((res) => setTimeout(res, 300));
        assert.equal(await read(beat), after, 'nothing the command started is still running');
      }),
    );

    void test(
      'stop after the command ended does nothing',
      withRunner(async ({ s, req }) => {
        const h = await s.runner.start(await req('exit0'));
        await exitOf(h.exited);
        await within('stop of an ended command', 10_000, h.stop());
      }),
    );

    void test(
      'after a restart, reattach finds the command of the same attempt that still runs, and can stop it',
      withRunner(async ({ s, req }) => {
        const r = await req('heartbeat');
        const h = await s.runner.start(r);
        await until('the command running', 20_000, () => existsSync(join(r.worktree, 'started.txt')));
        // The monitor stops without stopping its agents (dispose), and a new one starts.
        await s.runner.dispose();
        const again = s.restarted();
        const h2 = await again.reattach(r);
        assert.ok(h2, 'the running command is found');
        assert.equal(h2.attempt, 1);
        assert.equal(await again.reattach({ ...r, attempt: 2 }), null, 'not for another attempt');
        await within('stop through the re-attached handle', 20_000, h2.stop());
        await exitOf(h2.exited);
        await exitOf(h.exited);
        await again.dispose();
      }),
    );

    void test(
      'reattach of a command that ended gives null, or a handle that has exited',
      withRunner(async ({ s, req }) => {
        const r = await req('exit3');
        await exitOf((await s.runner.start(r)).exited);
        const again = s.restarted();
        const h = await again.reattach(r);
        if (h) await exitOf(h.exited);
        const fresh = s.restarted();
        assert.equal(await fresh.reattach(await req('exit0', 5)), null, 'nothing ran for that attempt');
        await again.dispose();
        await fresh.dispose();
      }),
    );
  });
}

/** The command that runs a behaviour's shell line on a real runner. */
export function shellCommand(b: Behaviour): string {
  return `sh -c ${shellQuote(b.shell)}`;
}
