import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AgentPipelineApi } from '../../../src/extension';
import { labelOf, openPipeline, pipelineApi, tooltipOf, waitFor } from './extensionUnderTest';
import type { TestApi } from './harness';
import { clockTime } from '../../../src/views/timeText';

/** The scripted agents every later test runs with: one per role of the default stages. */
export const AGENTS = [
  { id: 'architect', role: 'architect' },
  { id: 'tester', role: 'tester' },
  { id: 'implementer', role: 'implementer' },
  { id: 'supervisor', role: 'supervisor' },
] as const;

type TaskNode = ReturnType<AgentPipelineApi['tasks']['getChildren']>[number];

/** The group (its label) that shows a task at the top level of the Tasks tree, if any. */
function groupOf(api: AgentPipelineApi, taskId: string): { node: TaskNode; label: string } | undefined {
  for (const node of api.tasks.getChildren()) {
    const children = api.tasks.getChildren(node);
    if (children.some((c) => c.id === taskId)) return { node, label: labelOf(api.tasks.getTreeItem(node)) ?? '' };
  }
  return undefined;
}

/** Counts `onDidChangeTreeData` events: the views redraw on them, never by polling. */
function countChanges(event: vscode.Event<unknown>): { readonly count: number; dispose(): void } {
  let count = 0;
  const sub = event(() => count++);
  return {
    get count() {
      return count;
    },
    dispose: () => {
      sub.dispose();
    },
  };
}

export function treeTests(t: TestApi): void {
  t.describe('views follow the engine', () => {
    t.it('a task added through the engine appears, ready to start, with no refresh', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      const changes = countChanges(api.tasks.onDidChangeTreeData);
      try {
        await p.addTasks([
          {
            spec: {
              id: 'TASK-001',
              title: 'Core module layout',
              paths: ['src/core/**'],
              description: 'Lay out the core module.',
            },
            source: 'in-host test',
          },
        ]);
        await waitFor(() => changes.count > 0, 'the Tasks tree to announce a change');
        const group = groupOf(api, 'TASK-001');
        // Nobody leads yet, so nothing queues it: it is pending, with no prerequisite to wait for.
        assert.equal(group?.label, 'Ready to start');
        const [item] = api.tasks.getChildren(group.node).map((n) => api.tasks.getTreeItem(n));
        assert.equal(item && labelOf(item), 'TASK-001  Core module layout');
        assert.equal(item?.description, 'pending');
        assert.equal(item?.contextValue, 'task canBlock canCancel canReprioritise canEdit');
      } finally {
        changes.dispose();
      }
    });

    t.it('a task with a prerequisite waits in its own group and shows the prerequisite as a child', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      const changes = countChanges(api.tasks.onDidChangeTreeData);
      try {
        await p.addTasks([
          {
            spec: {
              id: 'TASK-002',
              title: 'Input parser',
              prerequisites: ['TASK-001'],
              paths: ['src/parser/**'],
              description: 'Parse the input.',
            },
            source: 'in-host test',
          },
          {
            spec: {
              id: 'TASK-003',
              title: 'Output formatter',
              paths: ['src/format/**'],
              priority: 'high',
              description: 'Format the output.',
            },
            source: 'in-host test',
          },
        ]);
        await waitFor(() => changes.count > 0 && groupOf(api, 'TASK-002') !== undefined, 'TASK-002 in the Tasks tree');
        const waiting = groupOf(api, 'TASK-002');
        assert.equal(waiting?.label, 'Waiting for prerequisites');
        const task = api.tasks.getChildren(waiting.node).find((n) => n.id === 'TASK-002');
        assert.ok(task);
        assert.equal(api.tasks.getTreeItem(task).collapsibleState, vscode.TreeItemCollapsibleState.Collapsed);
        const prerequisites = api.tasks.getChildren(task);
        assert.deepEqual(
          prerequisites.map((n) => n.id),
          ['TASK-001'],
        );
        assert.equal(api.tasks.getTreeItem(prerequisites[0]!).description, 'prerequisite · pending');
        const ready = groupOf(api, 'TASK-003');
        assert.equal(ready?.label, 'Ready to start');
        assert.deepEqual(
          api.tasks.getChildren(ready.node).map((n) => n.id),
          ['TASK-001', 'TASK-003'],
        );
        assert.equal(api.tasks.getTreeItem(api.tasks.getChildren(ready.node)[1]!).description, 'pending · high');
      } finally {
        changes.dispose();
      }
    });

    t.it('agents added through the engine appear in the Agents tree, idle, with their role', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      const changes = countChanges(api.agents.onDidChangeTreeData);
      try {
        for (const a of AGENTS) await p.addAgent({ ...a, command: 'scripted' });
        await waitFor(
          () => changes.count > 0 && api.agents.getChildren().length === AGENTS.length,
          'four agents in the Agents tree',
        );
        assert.deepEqual(api.agents.getChildren(), AGENTS.map((a) => a.id).sort());
        const item = api.agents.getTreeItem('tester');
        assert.equal(item.description, 'tester · idle');
        assert.equal(item.contextValue, 'agent.idle');
        assert.deepEqual(item.command?.arguments, ['tester']);
      } finally {
        changes.dispose();
      }
    });

    t.it('a paused agent shows when it resumes in the Agents tree, and its status again once resumed', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      // Pausing is the leader's to record (the monitor does it when a CLI meets its limit).
      await p.lead();
      try {
        const until = new Date(Date.now() + 3_600_000).toISOString();
        const pause = p.newBatch();
        pause.agentEvent('tester', { type: 'pause', until, reason: 'usage limit reached' });
        await p.commit(pause);
        const expected = `tester · paused until ${clockTime(until)}`;
        await waitFor(
          () => api.agents.getTreeItem('tester').description === expected,
          () =>
            `the Agents tree to show "${expected}" (it shows "${String(api.agents.getTreeItem('tester').description)}")`,
        );
        const item = api.agents.getTreeItem('tester');
        // An hour ahead may be tomorrow: the time then carries its date (timeText.ts clockTime).
        assert.match(tooltipOf(item) ?? '', new RegExp(`^paused until ${clockTime(until)}: usage limit reached$`, 'm'));
        assert.equal(item.contextValue, 'agent.paused');
        // The status bar counts it apart from the busy ones, and its tooltip says when it resumes.
        await waitFor(
          () => api.statusBar.item.text.includes('0/4 busy · $(debug-pause) 1 paused · 3 waiting'),
          () => `the status bar to count the paused agent (it shows "${api.statusBar.item.text}")`,
        );
        assert.match(
          tooltipOf(api.statusBar.item) ?? '',
          new RegExp(`^tester paused until ${clockTime(until)}: usage limit reached$`, 'm'),
        );
        const resume = p.newBatch();
        resume.agentEvent('tester', { type: 'resume' });
        await p.commit(resume);
        await waitFor(
          () => api.agents.getTreeItem('tester').description === 'tester · idle',
          'the resumed agent to show idle again',
        );
        await waitFor(
          () => !api.statusBar.item.text.includes('paused'),
          () => `the status bar to forget the pause (it shows "${api.statusBar.item.text}")`,
        );
      } finally {
        await p.follow();
      }
    });

    t.it("a task's tooltip says what it spent, summed over its attempts and stages", async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      // Spending is the leader's to record (the monitor does it when an attempt's command ends).
      await p.lead();
      try {
        const b = p.newBatch();
        const model = (costUsd: number, input: number) => ({
          model: 'claude-sonnet',
          input,
          output: 200,
          cacheRead: 0,
          cacheWrite: 0,
          costUsd,
          costSource: 'cli' as const,
        });
        const at = new Date().toISOString();
        for (const [attempt, stage, agent, m] of [
          [1, 'architect', 'architect', model(0.012, 1000)],
          [2, 'test', 'tester', model(0.03, 2000)],
          [3, 'test', 'tester', model(0.008, 500)],
        ] as const)
          b.record({
            type: 'attempt.usage',
            id: 'TASK-003',
            usage: { attempt, stage, agent, at, models: [m], session: null },
          });
        await p.commit(b);
        const tooltip = () => {
          const group = groupOf(api, 'TASK-003');
          const node = group && api.tasks.getChildren(group.node).find((n) => n.id === 'TASK-003');
          return (node && tooltipOf(api.tasks.getTreeItem(node))) ?? '';
        };
        await waitFor(
          () => tooltip().includes('spent'),
          () => `the tooltip of TASK-003 to say what it spent (it says "${tooltip()}")`,
        );
        // Markdown escapes its punctuation; what a person reads is the text without the backslashes.
        const text = tooltip().replace(/\\(.)/g, '$1');
        assert.match(text, /^spent \$0\.0500 over 3 attempts \(3\.5k in · 600 out\)$/m);
        assert.match(text, /^by stage: architect \$0\.0120 · test \$0\.0380$/m);
      } finally {
        await p.follow();
      }
    });

    t.it('a change to one task or one agent redraws that row alone, never the whole tree', async () => {
      const api = await pipelineApi();
      const p = await openPipeline();
      await p.lead();
      const taskEvents: unknown[] = [];
      const agentEvents: unknown[] = [];
      const subs = [
        api.tasks.onDidChangeTreeData((e) => taskEvents.push(e)),
        api.agents.onDidChangeTreeData((e) => agentEvents.push(e)),
      ];
      // What an event names: the ids of its rows, or 'the whole tree'.
      const named = (events: unknown[]): string[] =>
        events.flatMap((e) =>
          e === undefined
            ? ['the whole tree']
            : (Array.isArray(e) ? e : [e]).map((n) =>
                typeof n === 'string' ? n : (n as { kind: string; id: string }).kind + ':' + (n as { id: string }).id,
              ),
        );
      try {
        const b = p.newBatch();
        const at = new Date().toISOString();
        b.record({
          type: 'attempt.usage',
          id: 'TASK-001',
          usage: {
            attempt: 1,
            stage: 'architect',
            agent: 'architect',
            at,
            models: [
              {
                model: 'claude-sonnet',
                input: 10,
                output: 20,
                cacheRead: 0,
                cacheWrite: 0,
                costUsd: 0.001,
                costSource: 'cli',
              },
            ],
            session: null,
          },
        });
        b.agentEvent('supervisor', {
          type: 'pause',
          until: new Date(Date.now() + 3_600_000).toISOString(),
          reason: 'usage limit reached',
        });
        await p.commit(b);
        await waitFor(
          () => taskEvents.length > 0 && agentEvents.length > 0,
          () =>
            `both trees to announce the change (tasks: ${named(taskEvents).join(', ')}; agents: ${named(agentEvents).join(', ')})`,
        );
        // The task's row, and the row that shows it as TASK-002's prerequisite; not TASK-002's own row,
        // and never the whole tree. (The previous test's change of TASK-003, gathered for 100 ms before
        // it is announced, may still arrive here: another row redrawn for a change of its own.)
        const rows = [...new Set(named(taskEvents))];
        assert.ok(rows.includes('task:TASK-001') && rows.includes('prerequisite:TASK-001'), rows.join(', '));
        assert.ok(!rows.includes('the whole tree') && !rows.includes('task:TASK-002'), rows.join(', '));
        assert.deepEqual([...new Set(named(agentEvents))], ['supervisor']);
      } finally {
        for (const s of subs) s.dispose();
        const resume = p.newBatch();
        resume.agentEvent('supervisor', { type: 'resume' });
        await p.commit(resume);
        await p.follow();
      }
      await waitFor(
        () => api.agents.getTreeItem('supervisor').description === 'supervisor · idle',
        'the supervisor idle again',
      );
    });

    t.it('the status bar counts the agents and the queue', async () => {
      const api = await pipelineApi();
      await waitFor(
        () => api.statusBar.item.text.endsWith('parallel · production · 0/4 busy · 3 waiting'),
        () => `the status bar to count 4 agents and 3 waiting tasks (it shows "${api.statusBar.item.text}")`,
      );
      assert.match(tooltipOf(api.statusBar.item) ?? '', /0 of 4 agents busy, 3 tasks waiting, 0 blocked, 0 done/);
    });
  });
}
