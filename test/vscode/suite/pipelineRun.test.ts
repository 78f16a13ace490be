import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { labelOf, openPipeline, pipelineApi, waitFor } from './extensionUnderTest';
import { autogroupOf } from '../../../src/engine/agents/sessionGroup';
import type { TestApi } from './harness';
import { AGENTS } from './trees.test';

const run = promisify(execFile);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, timeout: 30_000, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } });
  return stdout;
}

/** A port nothing listens on now (the endpoint takes it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** GET on the metrics endpoint: status and body. */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 10 s`)));
    req.on('error', reject);
  });
}

async function isAncestor(cwd: string, commit: string, of: string): Promise<boolean> {
  return run('git', ['merge-base', '--is-ancestor', commit, of], { cwd, timeout: 30_000 }).then(
    () => true,
    () => false,
  );
}

/**
 * What became of the scheduling group of a terminal's shell (`/proc/<pid>/autogroup`): 'lowered'
 * to the extension host's group's niceness plus the agents' once its command is typed, 'no
 * autogroups' where the kernel has none, else what was seen.
 */
async function sessionGroupOf(terminal: vscode.Terminal, niceness: number): Promise<string> {
  const group = autogroupOf;
  const own = await group('self');
  if (!own) return 'no autogroups';
  const pid = await terminal.processId;
  if (pid === undefined) return `${terminal.name}: no shell pid`;
  const target = Math.min(19, own.nice + niceness);
  let seen: { id: string; nice: number } | undefined;
  try {
    await waitFor(async () => {
      seen = await group(pid);
      return seen !== undefined && seen.id !== own.id && seen.id !== 'default' && seen.nice === target;
    }, `the group of ${terminal.name}'s shell to get niceness ${target}`);
    return 'lowered';
  } catch {
    return `${terminal.name}: ${seen ? `group ${seen.id} at ${seen.nice}` : 'gone'} (the host's ${own.id} at ${own.nice})`;
  }
}

export function pipelineRunTests(t: TestApi): void {
  t.describe('a pipeline run with scripted agents in terminals', () => {
    let maxRowsDrawn = 0;
    /** The Tasks tree's groups each task was seen in while the pipeline ran. */
    const seenIn = new Map<string, Set<string>>();

    t.it('agentPipeline.showMetrics opens the metrics panel, whose page draws its charts', async () => {
      const api = await pipelineApi();
      await vscode.commands.executeCommand('agentPipeline.showMetrics');
      await waitFor(() => api.metricsPanel !== undefined, 'the metrics panel to open');
      const panel = api.metricsPanel!;
      assert.equal(panel.panel.title, 'Pipeline Metrics');
      assert.equal(panel.panel.viewType, 'agentPipeline.metrics');
      await waitFor(() => (panel.drawn?.charts ?? 0) > 0, 'the page to report its drawing', 30_000);
      // Throughput, queue depth and utilisation; stage durations and handoffs have no data yet.
      assert.deepEqual(panel.drawn, { charts: 3, rows: 0 });
    });

    t.it(
      'start runs every task through the four stages in named integrated terminals and merges it on main',
      async () => {
        const api = await pipelineApi();
        const p = await openPipeline();
        const root = p.home.root;
        const mainBefore = (await git(root, 'rev-parse', 'main')).trim();
        const opened: string[] = [];
        const groups: Promise<string>[] = [];
        const sub = vscode.window.onDidOpenTerminal((terminal) => {
          opened.push(terminal.name);
          groups.push(sessionGroupOf(terminal, p.config.agentNiceness));
        });
        try {
          await vscode.commands.executeCommand('agentPipeline.start');
          assert.equal(api.session.running, true, 'the pipeline runs in this window');
          assert.equal(p.isLeader, true, 'this window leads');
          assert.ok(api.session.terminalRunner, 'the default runner is the terminal runner');
          await waitFor(
            () => {
              const tasks = Object.values(p.state.tasks);
              const blocked = tasks.find((x) => x.status === 'blocked');
              if (blocked) throw new Error(`${blocked.id} was blocked: ${blocked.blocked_reason ?? ''}`);
              maxRowsDrawn = Math.max(maxRowsDrawn, api.metricsPanel?.drawn?.rows ?? 0);
              for (const group of api.tasks.getChildren()) {
                const label = labelOf(api.tasks.getTreeItem(group)) ?? '';
                for (const task of api.tasks.getChildren(group))
                  seenIn.set(task.id, (seenIn.get(task.id) ?? new Set()).add(label));
              }
              return tasks.length === 3 && tasks.every((x) => x.status === 'done');
            },
            () =>
              `every task to be done (${Object.values(p.state.tasks)
                .map((x) => `${x.id} ${x.status} ${x.stage}`)
                .join(', ')})`,
            100_000,
          );
        } finally {
          sub.dispose();
        }

        for (const task of Object.values(p.state.tasks)) {
          assert.ok(task.merged_commit, `${task.id} has a merge commit`);
          assert.ok(
            await isAncestor(root, task.merged_commit, 'main'),
            `${task.id}'s merge ${task.merged_commit} is on main`,
          );
          for (const stage of p.config.stages) {
            const agent = [...task.history]
              .reverse()
              .find((h) => h.event === 'assign' && h.stage === stage.name)?.agent;
            assert.ok(agent, `${task.id} was assigned in stage ${stage.name}`);
            const name = `Agent ${agent} (${stage.role}) · ${task.id}`;
            assert.ok(opened.includes(name), `a terminal named "${name}" was opened (opened: ${opened.join('; ')})`);
          }
        }
        // Each agent's shell leads a session of its own; where the kernel groups sessions (Linux's
        // autogroups), the group gets the agents' niceness, else it competes with the editor's whole
        // group as an equal.
        const outcomes = await Promise.all(groups);
        if (!outcomes.includes('no autogroups'))
          assert.deepEqual(
            outcomes.filter((o) => o !== 'lowered'),
            [],
            `every agent terminal's session group was lowered (${outcomes.join(', ')})`,
          );
        const log = await git(root, 'log', '--format=%s', `${mainBefore}..main`);
        for (const id of ['TASK-001', 'TASK-002', 'TASK-003'])
          assert.match(log, new RegExp(id), `main's new history mentions ${id}:\n${log}`);
        // The prerequisite was merged before the task that needed it.
        const t1 = p.task('TASK-001').merged_commit!;
        const t2 = p.task('TASK-002').merged_commit!;
        assert.ok(await isAncestor(root, t1, t2), 'TASK-001 was merged before TASK-002');
      },
      { timeoutMs: 120_000 },
    );

    t.it('the Tasks tree shows the merged tasks as done, the agents idle, the status bar nothing waiting', async () => {
      const api = await pipelineApi();
      await waitFor(() => {
        const groups = api.tasks.getChildren();
        return groups.length === 1 && labelOf(api.tasks.getTreeItem(groups[0]!)) === 'Done';
      }, 'the Tasks tree to show one group, Done');
      const done = api.tasks.getChildren(api.tasks.getChildren()[0]).map((n) => n.id);
      assert.deepEqual(done, ['TASK-001', 'TASK-002', 'TASK-003']);
      // On the way, the tree followed each task through the stage groups (sampled every 50 ms, so
      // a stage may slip through unseen, but not all of them).
      const stageGroups = [
        'Architect (architect)',
        'Test (tester)',
        'Implementation (implementer)',
        'Supervisor (supervisor)',
      ];
      for (const id of done) {
        const seen = [...(seenIn.get(id) ?? [])];
        assert.ok(
          seen.some((g) => stageGroups.includes(g)),
          `${id} was seen in a stage group (seen in: ${seen.join(', ')})`,
        );
      }
      await waitFor(
        () => AGENTS.every((a) => api.agents.getTreeItem(a.id).description === `${a.role} · idle`),
        'every agent idle in the Agents tree',
      );
      await waitFor(
        () => api.statusBar.item.text === '$(sync~spin) parallel · production · 0/4 busy · 0 waiting',
        () => `the status bar to show a running, idle pipeline (it shows "${api.statusBar.item.text}")`,
      );
    });

    t.it('the metrics page drew the tasks in flight, then all five charts with nothing in flight', async () => {
      const api = await pipelineApi();
      const panel = api.metricsPanel;
      assert.ok(panel, 'the metrics panel is still open');
      assert.ok(maxRowsDrawn > 0, 'the page drew a table of tasks in flight while the pipeline ran');
      // Completed stages and handoffs fill the last two charts; the empty table shows the page drew
      // after the last task left the pipeline.
      await waitFor(
        () => panel.drawn?.charts === 5 && panel.drawn.rows === 0,
        () => `the page to draw five charts and no task in flight (drawn: ${JSON.stringify(panel.drawn)})`,
      );
      const metrics = api.session.metrics?.metricsSnapshot();
      assert.equal(metrics?.counters.merged, 3);
      assert.equal(metrics?.tasks.byStatus.done, 3);
    });

    t.it('agentPipeline.stop stops the agents and gives the lead back', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      await vscode.commands.executeCommand('agentPipeline.stop');
      assert.equal(api.session.running, false);
      assert.equal(p.isLeader, false);
      await waitFor(
        () => api.statusBar.item.text.startsWith('$(debug-pause)'),
        () => `the status bar to show a stopped pipeline (it shows "${api.statusBar.item.text}")`,
      );
    });

    t.it('with metrics enabled, the leading window serves its own metrics on 127.0.0.1 until it stops', async () => {
      const api = await pipelineApi();
      const config = vscode.workspace.getConfiguration('agentPipeline');
      const port = await freePort();
      await config.update('metrics.enabled', true, vscode.ConfigurationTarget.Global);
      await config.update('metrics.port', port, vscode.ConfigurationTarget.Global);
      try {
        await vscode.commands.executeCommand('agentPipeline.start');
        assert.equal(api.session.running, true);
        const url = api.session.metricsServer?.url;
        assert.equal(url, `http://127.0.0.1:${port}`);
        const metrics = await httpGet(`${url}/metrics`);
        assert.equal(metrics.status, 200);
        assert.match(metrics.body, /^pipeline_is_leader 1$/m);
        // The metrics the window has kept since it opened the pipeline, not a fresh set: the three
        // merges of the run above count.
        assert.match(metrics.body, /^pipeline_merges_total 3$/m);
        assert.equal((await httpGet(`${url}/readyz`)).status, 200);
        await vscode.commands.executeCommand('agentPipeline.stop');
        assert.equal(api.session.metricsServer, undefined);
        await assert.rejects(httpGet(`${url}/healthz`), 'the endpoint closed with the run');
      } finally {
        if (api.session.running) await vscode.commands.executeCommand('agentPipeline.stop');
        await config.update('metrics.enabled', undefined, vscode.ConfigurationTarget.Global);
        await config.update('metrics.port', undefined, vscode.ConfigurationTarget.Global);
      }
    });
  });
}
