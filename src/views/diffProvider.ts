import * as vscode from 'vscode';
import { diffAgainstTarget } from '../engine/git/changes';
import { GitRepo } from '../engine/git/gitRepo';
import { assertTaskId, isTaskId } from '../engine/model/ids';
import { DIFF_SCHEME } from '../contributions';

/**
 * Read-only documents of a task's changes:
 * - its diff against the target branch (`agent-pipeline-diff:/TASK-001.diff?target=main`), shown
 *   with the editor's diff colouring;
 * - one file of the repository at one commit (`agent-pipeline-diff:/src/a.ts?task=TASK-001&rev=<sha>`),
 *   the two sides of each file in the review's multi-file diff editor. The path is the file's own, so
 *   the editor picks its language and the review names its folder; the commit is fixed when the
 *   review opens.
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

  /** `path` (relative to the repository root, with `/`) as it is in commit `rev`, for `taskId`'s review. */
  static fileUri(taskId: string, path: string, rev: string): vscode.Uri {
    return vscode.Uri.from({
      scheme: DIFF_SCHEME,
      path: `/${path}`,
      query: new URLSearchParams({ task: taskId, rev }).toString(),
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const root = this.root();
    if (!root) return 'No folder is open.';
    const query = new URLSearchParams(uri.query);
    const rev = query.get('rev');
    if (rev !== null) return fileAt(root, query.get('task') ?? '', uri.path, rev);
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

/** The text of a review side; the URI is data from a document link, so it is checked before git sees it. */
async function fileAt(root: string, taskId: string, uriPath: string, rev: string): Promise<string> {
  const parts = uriPath.replace(/^\//, '').split('/');
  const path = parts.join('/');
  if (!isTaskId(taskId) || !/^[0-9a-f]{7,64}$/.test(rev) || !path || parts.some((p) => !p || p === '.' || p === '..'))
    return `Not a file of a task's review: ${uriPath}?task=${taskId}&rev=${rev}\n`;
  const repo = await GitRepo.open(root);
  const r = await repo.readResult(['show', `${rev}:${path}`], { okExitCodes: [0, 128] });
  return r.exitCode === 0 ? r.stdout : '';
}
