import * as vscode from 'vscode';
import { diffAgainstTarget } from '../engine/git/changes';
import { GitRepo } from '../engine/git/gitRepo';
import { assertTaskId } from '../engine/model/ids';
import { DIFF_SCHEME } from '../contributions';

/**
 * Read-only documents with a task's diff against the target branch
 * (`agent-pipeline-diff:/TASK-001.diff?target=main`), shown with the editor's diff colouring.
 */
export class TaskDiffProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly root: () => string | undefined) {}

  static uri(taskId: string, target: string): vscode.Uri {
    return vscode.Uri.from({
      scheme: DIFF_SCHEME,
      path: `/${taskId}.diff`,
      query: new URLSearchParams({ target }).toString(),
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const root = this.root();
    if (!root) return 'No folder is open.';
    const taskId = assertTaskId(uri.path.replace(/^\//, '').replace(/\.diff$/, ''));
    const target = new URLSearchParams(uri.query).get('target') ?? 'main';
    const repo = await GitRepo.open(root);
    try {
      const diff = await diffAgainstTarget(repo, taskId, target);
      return diff.trim() ? diff : `# ${taskId}: no changes against ${target} (not started yet, or already merged).\n`;
    } catch (e) {
      return `# ${taskId}: no diff: ${e instanceof Error ? e.message : String(e)}\n`;
    }
  }
}
