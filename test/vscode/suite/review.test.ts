import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { COMMANDS } from '../../../src/contributions';
import type { AgentPipelineApi } from '../../../src/extension';
import {
  labelOf,
  openPipeline,
  pipelineApi,
  recordErrorMessages,
  tooltipOf,
  waitFor,
  withWindowStubs,
} from './extensionUnderTest';
import type { TestApi } from './harness';

/**
 * A person as the supervisor stage, in a real VS Code: the workspace (runInHostSuite.ts) has
 * scripted agents for architect, test and implementation and one task, TASK-001. Started from the
 * window, the pipeline takes it to the supervisor stage, where it waits: the Tasks tree says
 * "awaiting your review", a notification offers Review, which opens the task's files in the
 * multi-file diff editor; Request Changes sends it back to implementation, Approve merges it.
 */

const run = promisify(execFile);

/** git's output as it printed it (a file's text keeps its last newline). */
async function gitRaw(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, timeout: 30_000, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } });
  return stdout;
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await gitRaw(cwd, ...args)).trim();
}

type TaskNode = ReturnType<AgentPipelineApi['tasks']['getChildren']>[number];

/** The tree item of a task (not of a prerequisite row), with its group's label. */
function taskItem(api: AgentPipelineApi, taskId: string): { item: vscode.TreeItem; group: string } | undefined {
  for (const group of api.tasks.getChildren()) {
    const node = api.tasks.getChildren(group).find((n: TaskNode) => n.id === taskId);
    if (node) return { item: api.tasks.getTreeItem(node), group: labelOf(api.tasks.getTreeItem(group)) ?? '' };
  }
  return undefined;
}

function reviewTabs(): vscode.Tab[] {
  return vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.label.startsWith('Review TASK-001:'));
}

function describeTask(p: Awaited<ReturnType<typeof openPipeline>>): string {
  const t = p.state.tasks['TASK-001'];
  return t ? `TASK-001 ${t.status} at ${t.stage}${t.blocked_reason ? ` (${t.blocked_reason})` : ''}` : 'no TASK-001';
}

/** Waits until TASK-001 waits at the supervisor stage; a blocked task fails at once. */
async function untilAwaitingReview(p: Awaited<ReturnType<typeof openPipeline>>, ms: number): Promise<void> {
  await waitFor(
    () => {
      const t = p.state.tasks['TASK-001'];
      if (t?.status === 'blocked') throw new Error(`TASK-001 was blocked: ${t.blocked_reason ?? ''}`);
      return t?.status === 'queued' && t.stage === 'supervisor';
    },
    () => `TASK-001 to await review (${describeTask(p)})`,
    ms,
  );
}

export function reviewTests(t: TestApi): void {
  t.describe('a person as the supervisor stage', () => {
    t.it(
      'the task waits at the human stage, awaiting your review; the notification’s Review opens its changes',
      async () => {
        const api = await pipelineApi();
        const p = await openPipeline();
        assert.equal(p.config.stages.at(-1)?.role, 'human', 'the workspace makes the supervisor a person');
        const shown: string[] = [];
        const real = vscode.window.showInformationMessage;
        const stub = (message: string, ...rest: unknown[]): Thenable<unknown> => {
          shown.push(message);
          // A person clicks Review on the notification that says the task awaits them.
          if (/awaits your review/.test(message)) return Promise.resolve('Review');
          return Reflect.apply(real, vscode.window, [message, ...rest]) as Thenable<unknown>;
        };
        await withWindowStubs({ showInformationMessage: stub }, async () => {
          await vscode.commands.executeCommand(COMMANDS.start);
          await untilAwaitingReview(p, 90_000);
          await waitFor(() => reviewTabs().length === 1, 'the review editor to open from the notification');
        });
        assert.ok(shown.includes('TASK-001 awaits your review: Greeting'), `notifications: ${shown.join(' | ')}`);
        const task = p.task('TASK-001');
        assert.equal(task.assigned_to, null, 'no agent took the human stage');
        assert.deepEqual(p.status().awaiting_review, ['TASK-001']);

        await waitFor(
          () => taskItem(api, 'TASK-001')?.item.description?.toString().startsWith('awaiting your review') === true,
          'the Tasks tree to say TASK-001 awaits review',
        );
        const { item, group } = taskItem(api, 'TASK-001')!;
        assert.equal(group, 'Supervisor (human)');
        assert.equal((item.iconPath as vscode.ThemeIcon).id, 'eye');
        assert.match(item.contextValue ?? '', /\bcanReview\b/);
        assert.equal(item.accessibilityInformation?.label, 'TASK-001 Greeting, awaiting your review');
        assert.match(tooltipOf(item) ?? '', /awaiting your review at the supervisor stage/);

        const tab = reviewTabs()[0]!;
        // VS Code adds the number of files to the title it was given.
        assert.match(tab.label, /^Review TASK-001: Greeting \(\d+ files?\)$/);
        assert.equal(vscode.window.tabGroups.activeTabGroup.activeTab, tab, 'the review is the active editor');
      },
      { timeoutMs: 120_000 },
    );

    t.it('the review compares each file at the merge base with the task branch, from git itself', async () => {
      const p = await openPipeline();
      const root = p.home.root;
      const head = await git(root, 'rev-parse', 'pipeline/TASK-001');
      const files = (await git(root, 'diff', '--name-only', 'main...pipeline/TASK-001')).split('\n').filter(Boolean);
      assert.ok(files.length > 0, 'the agents changed files');
      // The multi-file diff editor loads both sides of the files it shows.
      await waitFor(
        () =>
          vscode.workspace.textDocuments.some(
            (d) => d.uri.scheme === 'agent-pipeline-diff' && d.uri.query === `task=TASK-001&rev=${head}`,
          ),
        'a modified side of the review to be loaded',
      );
      for (const doc of vscode.workspace.textDocuments.filter((d) => d.uri.query === `task=TASK-001&rev=${head}`)) {
        const path = doc.uri.path.replace(/^\//, '');
        assert.ok(files.includes(path), `${path} is one of the task's files (${files.join(', ')})`);
        assert.equal(doc.getText(), await gitRaw(root, 'show', `${head}:${path}`), `${path} at the head`);
      }
    });

    t.it(
      'Request Changes asks what to change, sends the task back to implementation and closes the review',
      async () => {
        const p = await openPipeline();
        let prompt = '';
        await withWindowStubs(
          {
            showInputBox: (o?: vscode.InputBoxOptions) => {
              prompt = o?.prompt ?? '';
              return Promise.resolve('Greet by name.');
            },
          },
          // As the editor title's button does: with the editor's resource, not a task.
          () => vscode.commands.executeCommand(COMMANDS.requestChanges, vscode.Uri.parse('multi-diff-editor:/x')),
        );
        assert.match(prompt, /TASK-001 goes back to implementation/);
        const t1 = p.task('TASK-001');
        assert.ok(
          t1.history.some((h) => h.event === 'changes_requested' && h.note === 'Greet by name.'),
          'the request is in the history',
        );
        await waitFor(() => reviewTabs().length === 0, 'the review editor to close');
        // The implementer reworks it, and it comes back for review.
        await waitFor(
          () =>
            p.task('TASK-001').history.filter((h) => h.event === 'assign' && h.stage === 'implementation').length === 2,
          () => `the implementer to take TASK-001 again (${describeTask(p)})`,
          30_000,
        );
        await untilAwaitingReview(p, 60_000);
      },
      { timeoutMs: 100_000 },
    );

    t.it(
      'Approve in the open review merges the task on main',
      async () => {
        const p = await openPipeline();
        await vscode.commands.executeCommand(COMMANDS.reviewTask, 'TASK-001');
        await waitFor(() => reviewTabs().length === 1, 'the review editor to open');
        const status = await vscode.commands.executeCommand<string>(COMMANDS.approveReview);
        assert.equal(status, 'merging');
        await waitFor(
          () => p.task('TASK-001').status === 'done',
          () => `TASK-001 to be merged (${describeTask(p)})`,
          30_000,
        );
        assert.equal(await git(p.home.root, 'rev-parse', 'main'), p.task('TASK-001').merged_commit);
        await waitFor(() => reviewTabs().length === 0, 'the review editor to close');
        const last = p
          .task('TASK-001')
          .history.filter((h) => h.event === 'complete')
          .at(-1);
        assert.equal(last?.note, 'supervisor done by human');
      },
      { timeoutMs: 60_000 },
    );

    t.it('answering a task that no longer awaits review shows the engine’s error', async () => {
      const errors = recordErrorMessages();
      try {
        await vscode.commands.executeCommand(COMMANDS.approveReview, 'TASK-001');
      } finally {
        errors.dispose();
      }
      assert.equal(errors.messages.length, 1);
      assert.match(errors.messages[0]!, /^TASK-001 is not awaiting review: it is done\./);
      await vscode.commands.executeCommand(COMMANDS.stop);
      assert.equal((await pipelineApi()).session.running, false);
    });
  });
}
