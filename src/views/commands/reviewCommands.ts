import { join } from 'node:path';
import * as vscode from 'vscode';
import { PipelineError } from '../../engine/errors';
import { taskChanges } from '../../engine/git/changes';
import { GitRepo } from '../../engine/git/gitRepo';
import { awaitingReview, whereAfterReview } from '../../engine/model/humanStage';
import { isTaskId } from '../../engine/model/ids';
import type { Task } from '../../engine/model/schema';
import type { Pipeline } from '../../engine/pipeline';
import { COMMANDS, CONTEXT } from '../../contributions';
import { TaskDiffProvider } from '../diffProvider';
import { taskIdFrom, type CommandContext, type Handlers } from './commandContext';

/**
 * A person's review of a task waiting at a human stage (engine/model/humanStage.ts). Review opens
 * the task's changes against the branch it will merge into in VS Code's multi-file diff editor
 * (`vscode.changes`), titled `Review TASK-004: <title>`; while that editor is active, the
 * `agentPipeline.reviewing` context key puts Approve and Request Changes in its title bar. Either
 * answer goes to the engine's `reviewTask` mutation (forwarded to the leader when this window
 * follows) and closes the review.
 */
export function reviewCommands({ session, extension }: CommandContext): Handlers {
  extension.subscriptions.push(trackReviewTabs());
  const awaiting = (p: Pipeline) => (t: Task) => awaitingReview(t, p.config);
  return {
    [COMMANDS.reviewTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, awaiting(p), 'Review which task?');
      if (!id) return;
      const root = session.root;
      if (!root) throw new PipelineError('not-initialised', 'Open the repository as the first folder first.');
      return openReview(p, root, p.task(id));
    },
    [COMMANDS.approveReview]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, reviewTarget(arg), awaiting(p), 'Approve which task?');
      if (!id) return;
      const t = await p.reviewTask(id, { verdict: 'approve' });
      await closeReview(id);
      void vscode.window.showInformationMessage(`${id} approved: ${whereAfterReview(t, pipelineRuns(session, p))}.`);
      return t.status;
    },
    [COMMANDS.requestChanges]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, reviewTarget(arg), awaiting(p), 'Request changes to which task?');
      if (!id) return;
      // Said before the person writes the text, not after.
      requireAwaiting(p, p.task(id));
      const text = await vscode.window.showInputBox({
        title: `Request Changes to ${id}`,
        prompt: `What should change? ${id} goes back to ${p.config.reworkStage} with this text.`,
        placeHolder: 'Handle an empty name, and test it.',
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() ? undefined : 'Say what should change.'),
      });
      if (!text?.trim()) return;
      const t = await p.reviewTask(id, { verdict: 'changes', text: text.trim() });
      await closeReview(id);
      void vscode.window.showInformationMessage(
        `${id}: changes requested; ${whereAfterReview(t, pipelineRuns(session, p))}.`,
      );
      return t.status;
    },
  };
}

/**
 * Whether a pipeline runs to act on the answer: this window's, or a `pipeline run` elsewhere that
 * leads (a command that leads only for its own change does not merge). Without one, an approved
 * task is merged when the pipeline next runs, and the message says so.
 */
function pipelineRuns(session: CommandContext['session'], p: Pipeline): boolean {
  if (session.running) return true;
  const leader = p.leader;
  return !p.isLeader && leader !== null && leader.oneChange !== true;
}

const TITLE = /^Review ([^:\s]+): /;

function reviewTitle(t: Task): string {
  return `Review ${t.id}: ${t.title}`;
}

/** The task of a review editor tab, from its title. */
function reviewTabTask(tab: vscode.Tab | undefined): string | undefined {
  const id = tab ? TITLE.exec(tab.label)?.[1] : undefined;
  return id && isTaskId(id) ? id : undefined;
}

/**
 * Which task an answer is for: a task id or tree node when given one, else the review in the active
 * editor (an editor title button passes that editor's resource, not a task).
 */
function reviewTarget(arg: unknown): unknown {
  if (arg !== undefined && !(arg instanceof vscode.Uri)) return arg;
  return reviewTabTask(vscode.window.tabGroups.activeTabGroup.activeTab);
}

/** Keeps `agentPipeline.reviewing` true while a review editor is the active one. */
function trackReviewTabs(): vscode.Disposable {
  let last: boolean | undefined;
  const update = () => {
    const reviewing = reviewTabTask(vscode.window.tabGroups.activeTabGroup.activeTab) !== undefined;
    if (reviewing === last) return;
    last = reviewing;
    void vscode.commands.executeCommand('setContext', CONTEXT.reviewing, reviewing);
  };
  update();
  return vscode.Disposable.from(
    vscode.window.tabGroups.onDidChangeTabs(update),
    vscode.window.tabGroups.onDidChangeTabGroups(update),
  );
}

function requireAwaiting(p: Pipeline, t: Task): void {
  if (!awaitingReview(t, p.config))
    throw new PipelineError('illegal-transition', `${t.id} is not awaiting review: it is ${t.status} at ${t.stage}.`, {
      fix: "A review answers a task queued at a stage whose role is human; Show Task Diff shows any task's changes.",
    });
}

async function openReview(p: Pipeline, root: string, t: Task): Promise<string> {
  requireAwaiting(p, t);
  const into = p.state.mode === 'pilot' ? p.config.pilotBranch : p.config.targetBranch;
  const c = await taskChanges(await GitRepo.open(root), t.id, into);
  if (c.files.length === 0) {
    const picked = await vscode.window.showInformationMessage(
      `${t.id} changes nothing against ${into}.`,
      'Approve',
      'Request Changes',
    );
    if (picked === 'Approve') await vscode.commands.executeCommand(COMMANDS.approveReview, t.id);
    if (picked === 'Request Changes') await vscode.commands.executeCommand(COMMANDS.requestChanges, t.id);
    return t.id;
  }
  const side = (path: string | undefined, rev: string) =>
    path === undefined ? undefined : TaskDiffProvider.fileUri(t.id, path, rev);
  const resources = c.files.map((f) => [
    vscode.Uri.file(join(root, f.path)),
    // Both sides from the git objects, fixed now: the merge base (what `git diff into...branch`
    // compares with) and the branch's head. An added file has no original, a deleted one no modified.
    side(f.status === 'added' ? undefined : (f.from ?? f.path), c.base),
    side(f.status === 'deleted' ? undefined : f.path, c.head),
  ]);
  await vscode.commands.executeCommand('vscode.changes', reviewTitle(t), resources);
  return t.id;
}

/** Closes the review editors of `taskId`: it has been answered. */
async function closeReview(taskId: string): Promise<void> {
  const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((tab) => reviewTabTask(tab) === taskId);
  if (tabs.length) await vscode.window.tabGroups.close(tabs);
}
