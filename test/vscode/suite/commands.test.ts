import { execFileSync } from 'node:child_process';
import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS } from '../../../src/contributions';
import {
  extensionUnderTest,
  openPipeline,
  pipelineApi,
  recordErrorMessages,
  runAnswering,
  waitFor,
  withWindowStubs,
} from './extensionUnderTest';
import type { TestApi } from './harness';

interface ContributedCommand {
  command: string;
  title: string;
}

function contributedCommands(): ContributedCommand[] {
  const manifest = extensionUnderTest().packageJSON as { contributes?: { commands?: ContributedCommand[] } };
  return manifest.contributes?.commands ?? [];
}

/** A quick pick stand-in that picks the item with `label`, failing when there is none. */
function pickLabel(label: string): typeof vscode.window.showQuickPick {
  return (async (items: readonly vscode.QuickPickItem[] | Thenable<readonly vscode.QuickPickItem[]>) => {
    const all = await items;
    const item = all.find((i) => i.label === label);
    if (!item)
      throw new Error(`the quick pick offered no "${label}" (it offered ${all.map((i) => i.label).join(', ')})`);
    return item;
  }) as unknown as typeof vscode.window.showQuickPick;
}

/** A stand-in for modal warnings that answers `answer`; non-modal ones go to the real function. */
function answerModal(answer: string): typeof vscode.window.showWarningMessage {
  const real = vscode.window.showWarningMessage;
  const stub = (message: string, ...rest: unknown[]): Thenable<unknown> => {
    const options = rest[0];
    if (options && typeof options === 'object' && 'modal' in options && options.modal) return Promise.resolve(answer);
    return Reflect.apply(real, vscode.window, [message, ...rest]) as Thenable<unknown>;
  };
  return stub;
}

interface Scenario {
  command: string;
  /** What the scenario does, for the test's name. */
  how: string;
  run: () => Promise<void>;
  /** Error messages the scenario expects (a failed command shows one); default none. */
  expectErrors?: RegExp[];
  timeoutMs?: number;
}

/**
 * One scenario per contributed command, in an order that walks the pipeline through the states the
 * commands need (the pipeline run before this left three done tasks and four idle agents). Each
 * checks the command's effect, and that it showed no error message.
 */
function scenarios(): Scenario[] {
  const id = COMMANDS;
  return [
    {
      command: id.showStatus,
      how: 'opens the status quick pick; closing it ends the command',
      run: async () => {
        assert.equal(await runAnswering(id.showStatus, [], 'close'), undefined);
      },
    },
    {
      command: id.refresh,
      how: 'redraws the Tasks tree',
      run: async () => {
        const api = await pipelineApi();
        let fired = false;
        const sub = api.tasks.onDidChangeTreeData(() => (fired = true));
        try {
          await vscode.commands.executeCommand(id.refresh);
          assert.ok(fired, 'the Tasks tree announced a change');
        } finally {
          sub.dispose();
        }
      },
    },
    {
      command: id.showLog,
      how: 'shows the output channel',
      run: async () => {
        await vscode.commands.executeCommand(id.showLog);
      },
    },
    {
      command: id.rolloutCheck,
      how: 'reports production as healthy in a notification (dismissed)',
      run: async () => {
        const result = await runAnswering<{ mode: string; ready: boolean; reasons: string[] }>(
          id.rolloutCheck,
          [],
          'dismissNotifications',
        );
        assert.equal(result?.mode, 'production');
        assert.equal(result.ready, true, `rollout check reasons: ${result.reasons.join('; ')}`);
      },
    },
    {
      command: id.exportStatus,
      how: 'writes status JSON where the save dialog says',
      run: async () => {
        const p = await openPipeline();
        const dir = await mkdtemp(join(tmpdir(), 'agent-pipeline-export-'));
        try {
          const file = join(dir, 'status.json');
          await withWindowStubs({ showSaveDialog: () => Promise.resolve(vscode.Uri.file(file)) }, () =>
            vscode.commands.executeCommand(id.exportStatus),
          );
          const status = JSON.parse(await readFile(file, 'utf8')) as {
            mode: string;
            tasks: Record<string, { status: string }>;
          };
          assert.equal(status.mode, p.state.mode);
          assert.deepEqual(Object.keys(status.tasks).sort(), ['TASK-001', 'TASK-002', 'TASK-003']);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    },
    {
      command: id.showMetrics,
      how: 'reveals the open metrics panel',
      run: async () => {
        const api = await pipelineApi();
        const before = api.metricsPanel;
        await vscode.commands.executeCommand(id.showMetrics);
        assert.ok(api.metricsPanel, 'a metrics panel is open');
        assert.equal(api.metricsPanel, before, 'one panel, revealed again, not a second one');
        await waitFor(() => api.metricsPanel?.panel.visible === true, 'the metrics panel to be visible');
      },
    },
    {
      command: id.addTask,
      how: 'asks for a title; cancelling adds nothing',
      run: async () => {
        const p = await openPipeline();
        const before = Object.keys(p.state.tasks).length;
        assert.equal(await runAnswering(id.addTask, [], 'close'), undefined);
        assert.equal(Object.keys(p.state.tasks).length, before);
      },
    },
    {
      command: id.addAgent,
      how: 'accepting every proposed answer adds a claude architect named architect-2',
      run: async () => {
        const p = await openPipeline();
        const added = await runAnswering<string>(id.addAgent, [], 'accept');
        assert.equal(added, 'architect-2');
        assert.equal(p.state.agents['architect-2']?.role, 'architect');
        assert.equal(p.state.agents['architect-2']?.command, 'claude');
        // Only scripted agents may take work in these tests.
        await p.removeAgent('architect-2');
      },
    },
    {
      command: id.importTasks,
      how: 'imports a Task Master tasks.json chosen in the open dialog',
      run: async () => {
        const p = await openPipeline();
        const dir = await mkdtemp(join(tmpdir(), 'agent-pipeline-import-'));
        try {
          const file = join(dir, 'tasks.json');
          const tasks = [
            {
              id: 1,
              title: 'Imported one',
              description: 'First.',
              status: 'pending',
              dependencies: [],
              priority: 'low',
            },
            { id: 2, title: 'Imported two', description: 'Second.', status: 'pending', dependencies: [1] },
          ];
          await writeFile(file, JSON.stringify({ tasks }));
          await withWindowStubs({ showOpenDialog: () => Promise.resolve([vscode.Uri.file(file)]) }, () =>
            vscode.commands.executeCommand(id.importTasks),
          );
          assert.equal(p.state.tasks['TM-1']?.title, 'Imported one');
          assert.deepEqual(p.state.tasks['TM-2']?.prerequisites, ['TM-1']);
          // Out of the way of the pipeline runs still to come.
          for (const t of ['TM-2', 'TM-1']) await p.cancelTask(t, 'imported only to test the import');
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    },
    {
      command: id.switchOrchestration,
      how: 'switches to sequential and back to parallel',
      run: async () => {
        const p = await openPipeline();
        await withWindowStubs({ showQuickPick: pickLabel('sequential') }, () =>
          vscode.commands.executeCommand(id.switchOrchestration),
        );
        assert.equal(p.state.orchestration_mode, 'sequential');
        await withWindowStubs({ showQuickPick: pickLabel('parallel') }, () =>
          vscode.commands.executeCommand(id.switchOrchestration),
        );
        assert.equal(p.state.orchestration_mode, 'parallel');
      },
    },
    {
      command: id.switchRollout,
      how: 'switches to shadow after the confirmation, and back to production',
      run: async () => {
        const p = await openPipeline();
        await withWindowStubs({ showQuickPick: pickLabel('shadow'), showWarningMessage: answerModal('Switch') }, () =>
          vscode.commands.executeCommand(id.switchRollout),
        );
        assert.equal(p.state.mode, 'shadow');
        await withWindowStubs(
          { showQuickPick: pickLabel('production'), showWarningMessage: answerModal('Switch') },
          () => vscode.commands.executeCommand(id.switchRollout),
        );
        assert.equal(p.state.mode, 'production');
      },
    },
    {
      command: id.openTaskFile,
      how: "opens a done task's last task file",
      run: async () => {
        await vscode.commands.executeCommand(id.openTaskFile, 'TASK-001');
        await waitFor(
          () => /TASK-001\.attempt-\d+\.md$/.test(vscode.window.activeTextEditor?.document.uri.path ?? ''),
          'the task file of TASK-001 in the active editor',
        );
        assert.match(vscode.window.activeTextEditor!.document.getText(), /## Status: COMPLETED/);
      },
    },
    {
      command: id.showTaskDiff,
      how: "opens a task's diff against the target branch",
      run: async () => {
        await vscode.commands.executeCommand(id.showTaskDiff, 'TASK-002');
        await waitFor(
          () => vscode.window.activeTextEditor?.document.uri.scheme === 'agent-pipeline-diff',
          'the diff of TASK-002 in the active editor',
        );
        assert.equal(vscode.window.activeTextEditor?.document.languageId, 'diff');
      },
    },
    {
      command: id.start,
      how: 'starts the pipeline with nothing to do',
      run: async () => {
        const api = await pipelineApi();
        await vscode.commands.executeCommand(id.start);
        assert.equal(api.session.running, true);
      },
    },
    {
      command: id.openAgentTerminal,
      how: "shows the agent's terminal",
      run: async () => {
        await vscode.commands.executeCommand(id.openAgentTerminal, 'tester');
        await waitFor(
          () => vscode.window.activeTerminal?.name.startsWith('Agent tester (tester) · ') === true,
          "tester's terminal to be the active one",
        );
      },
    },
    {
      command: id.stopAgent,
      how: 'takes an agent offline',
      run: async () => {
        const p = await openPipeline();
        await vscode.commands.executeCommand(id.stopAgent, 'tester');
        assert.equal(p.state.agents.tester?.status, 'offline');
      },
    },
    {
      command: id.restartAgent,
      how: 'brings the agent back, idle',
      run: async () => {
        const p = await openPipeline();
        await vscode.commands.executeCommand(id.restartAgent, 'tester');
        assert.equal(p.state.agents.tester?.status, 'idle');
      },
    },
    {
      command: id.stop,
      how: 'stops the pipeline',
      run: async () => {
        const api = await pipelineApi();
        await vscode.commands.executeCommand(id.stop);
        assert.equal(api.session.running, false);
      },
    },
    {
      command: id.reprioritiseTask,
      how: 'accepting the first priority makes a new task critical',
      run: async () => {
        const p = await openPipeline();
        await p.addTasks([
          { spec: { id: 'TASK-004', title: 'Something to act on', paths: ['src/other/**'] }, source: 'in-host test' },
        ]);
        await runAnswering(id.reprioritiseTask, ['TASK-004'], 'accept');
        assert.equal(p.task('TASK-004').priority, 'critical');
      },
    },
    {
      command: id.promotePilot,
      how: 'names a missing pilot branch; with the pilot branch at the target, says there is nothing to promote',
      expectErrors: [/^The pilot branch pipeline\/pilot does not exist in /],
      run: async () => {
        const p = await openPipeline();
        await vscode.commands.executeCommand(id.promotePilot);
        execFileSync('git', ['branch', 'pipeline/pilot', p.config.targetBranch], { cwd: p.home.root });
        try {
          const plan = await vscode.commands.executeCommand<{ commits: number }>(id.promotePilot);
          assert.equal(plan.commits, 0);
        } finally {
          execFileSync('git', ['branch', '-D', 'pipeline/pilot'], { cwd: p.home.root });
        }
      },
    },
    {
      command: id.editTask,
      how: "changes a task's labels, its title, then its prerequisites, through the field picker",
      run: async () => {
        const p = await openPipeline();
        const answer = (value: string) => (() => Promise.resolve(value)) as typeof vscode.window.showInputBox;
        await withWindowStubs(
          { showQuickPick: pickLabel('Labels'), showInputBox: answer('pilot, backend, pilot') },
          () => vscode.commands.executeCommand(id.editTask, 'TASK-004'),
        );
        assert.deepEqual(p.task('TASK-004').labels, ['pilot', 'backend']);
        await withWindowStubs({ showQuickPick: pickLabel('Title'), showInputBox: answer('  Something else  ') }, () =>
          vscode.commands.executeCommand(id.editTask, 'TASK-004'),
        );
        assert.equal(p.task('TASK-004').title, 'Something else');
        // Prerequisites: the field, then (a second, multi-select pick) every other task, the current ones picked.
        let offered: string[] = [];
        const picks = (async (items: readonly vscode.QuickPickItem[] | Thenable<readonly vscode.QuickPickItem[]>) => {
          const all = await items;
          const field = all.find((i) => i.label === 'Prerequisites');
          if (field) return field;
          offered = all.map((i) => i.label);
          return all.slice(0, 1);
        }) as unknown as typeof vscode.window.showQuickPick;
        await withWindowStubs({ showQuickPick: picks }, () => vscode.commands.executeCommand(id.editTask, 'TASK-004'));
        assert.ok(offered.length > 0 && !offered.includes('TASK-004'), `offered: ${offered.join(', ')}`);
        assert.deepEqual(p.task('TASK-004').prerequisites, [offered[0]]);
      },
    },
    {
      command: id.reviewTask,
      how: 'refuses a task that is not at a human stage, naming it',
      expectErrors: [/^TASK-004 is not awaiting review: it is pending at architect\./],
      run: async () => {
        await vscode.commands.executeCommand(id.reviewTask, 'TASK-004');
      },
    },
    {
      command: id.approveReview,
      how: "refuses a task that is not at a human stage, with the engine's fix",
      expectErrors: [/^TASK-004 is not awaiting review: it is pending\. No stage of .* is worked by people/],
      run: async () => {
        await vscode.commands.executeCommand(id.approveReview, 'TASK-004');
      },
    },
    {
      command: id.requestChanges,
      how: 'refuses a task that is not at a human stage before asking for the text',
      expectErrors: [/^TASK-004 is not awaiting review: it is pending at architect\./],
      run: async () => {
        const asked = await withWindowStubs(
          {
            showInputBox: () => Promise.reject(new Error('asked for the text')),
          },
          () => vscode.commands.executeCommand(id.requestChanges, 'TASK-004'),
        );
        assert.equal(asked, undefined);
      },
    },
    {
      command: id.blockTask,
      how: 'blocks the task with the proposed reason',
      run: async () => {
        const p = await openPipeline();
        await runAnswering(id.blockTask, ['TASK-004'], 'accept');
        assert.equal(p.task('TASK-004').status, 'blocked');
        assert.equal(p.task('TASK-004').blocked_reason, 'blocked by a person');
      },
    },
    {
      command: id.unblockTask,
      how: 'unblocks it',
      run: async () => {
        const p = await openPipeline();
        await vscode.commands.executeCommand(id.unblockTask, 'TASK-004');
        // Released: pending until a leader queues it again.
        assert.equal(p.task('TASK-004').status, 'pending');
      },
    },
    {
      command: id.retryTask,
      how: 'retries a blocked task',
      run: async () => {
        const p = await openPipeline();
        await p.blockTask('TASK-004', 'blocked again, to retry');
        await vscode.commands.executeCommand(id.retryTask, 'TASK-004');
        assert.equal(p.task('TASK-004').status, 'pending');
        assert.equal(p.task('TASK-004').blocked_reason, null);
      },
    },
    {
      command: id.cancelTask,
      how: 'cancels the task after the confirmation',
      run: async () => {
        const p = await openPipeline();
        await withWindowStubs({ showWarningMessage: answerModal('Cancel Task') }, () =>
          vscode.commands.executeCommand(id.cancelTask, 'TASK-004'),
        );
        assert.equal(p.task('TASK-004').status, 'cancelled');
      },
    },
    {
      command: id.addTask,
      how: 'asks title, description, priority, labels, paths and prerequisites, and adds what was answered',
      run: async () => {
        const p = await openPipeline();
        const typed: Record<string, string> = {
          'Add Task (1/6)': 'Output formatter',
          'Add Task (2/6)': 'Format the results.',
          'Add Task (4/6)': 'pilot, backend',
          'Add Task (5/6)': 'src/format/**, docs/format.md',
        };
        const titles: string[] = [];
        const inputBox = ((o?: vscode.InputBoxOptions) => {
          titles.push(o?.title ?? '');
          return Promise.resolve(typed[o?.title ?? '']);
        }) as typeof vscode.window.showInputBox;
        const prerequisites = (async (
          items: readonly vscode.QuickPickItem[] | Thenable<readonly vscode.QuickPickItem[]>,
          o?: vscode.QuickPickOptions,
        ) => {
          titles.push(o?.title ?? '');
          assert.equal(o?.canPickMany, true);
          return (await items).filter((i) => i.label === 'TASK-001');
        }) as unknown as typeof vscode.window.showQuickPick;
        // The priority question is a real quick pick: accepting it keeps medium, the preselected one.
        const added = await withWindowStubs({ showInputBox: inputBox, showQuickPick: prerequisites }, () =>
          runAnswering<string>(id.addTask, [], 'accept'),
        );
        assert.deepEqual(titles, [
          'Add Task (1/6)',
          'Add Task (2/6)',
          'Add Task (4/6)',
          'Add Task (5/6)',
          'Add Task (6/6)',
        ]);
        const t = p.task(added!);
        assert.deepEqual(
          [t.title, t.description, t.priority, t.labels, t.paths, t.prerequisites],
          [
            'Output formatter',
            'Format the results.',
            'medium',
            ['pilot', 'backend'],
            ['src/format/**', 'docs/format.md'],
            ['TASK-001'],
          ],
        );
        await p.cancelTask(t.id, 'added only to test Add Task');
      },
    },
    {
      command: id.init,
      how: 'refuses, naming the pipeline that exists (the untrusted suite initialises a fresh repository)',
      expectErrors: [/A pipeline exists already: .*\.pipeline\/config\.json/],
      run: async () => {
        await vscode.commands.executeCommand(id.init);
      },
    },
    {
      command: id.openAgentWorktree,
      how: "adds the agent's worktree as a workspace folder after the repository",
      run: async () => {
        const folders = (): readonly vscode.WorkspaceFolder[] => vscode.workspace.workspaceFolders ?? [];
        const first = folders()[0]?.uri.fsPath;
        await vscode.commands.executeCommand(id.openAgentWorktree, 'tester');
        await waitFor(() => folders().length === 2, 'a second workspace folder');
        assert.equal(folders()[0]?.uri.fsPath, first, 'the repository stays the first folder');
        assert.equal(folders()[1]?.name, 'agent: tester');
        assert.match(folders()[1]!.uri.fsPath, /sample\.pipeline-worktrees\/tester$/);
        // Asked again, it adds nothing.
        await vscode.commands.executeCommand(id.openAgentWorktree, 'tester');
        assert.equal(folders().length, 2);
      },
    },
  ];
}

export function commandTests(t: TestApi): void {
  t.describe('commands', () => {
    t.it('every command in package.json is registered, and has a scenario below', async () => {
      await pipelineApi();
      const registered = new Set(await vscode.commands.getCommands(true));
      const contributed = contributedCommands().map((c) => c.command);
      assert.ok(contributed.length > 0, 'package.json contributes commands');
      assert.deepEqual(
        contributed.filter((c) => !registered.has(c)),
        [],
        'contributed but not registered',
      );
      assert.deepEqual(
        [...new Set(scenarios().map((s) => s.command))].sort(),
        [...contributed].sort(),
        'commands with a scenario',
      );
    });

    for (const s of scenarios()) {
      t.it(
        `${s.command} ${s.how}`,
        async () => {
          const errors = recordErrorMessages();
          try {
            await s.run();
          } finally {
            errors.dispose();
          }
          const expected = s.expectErrors ?? [];
          assert.equal(
            errors.messages.length,
            expected.length,
            `error messages shown: ${JSON.stringify(errors.messages)}`,
          );
          expected.forEach((pattern, i) => assert.match(errors.messages[i]!, pattern));
        },
        s.timeoutMs === undefined ? undefined : { timeoutMs: s.timeoutMs },
      );
    }
  });
}
