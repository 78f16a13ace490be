import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { AgentPipelineApi } from '../../../src/extension';
import { labelOf, openPipeline, pipelineApi, tooltipOf, waitFor } from './extensionUnderTest';
import type { TestApi } from './harness';

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
