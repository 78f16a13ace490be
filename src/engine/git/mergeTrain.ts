import { PipelineError } from '../errors';
import { advanceBranch, branchTips, looseBranchTips, requireBranch } from './branches';
import type { GitRepo } from './gitRepo';
import { mergeCommit, type MergeKind, type MergeResult } from './merge';
import { assertBranchName } from './refNames';

/**
 * Task merges into one target, taken together: a merge train.
 *
 * Each merge into the target runs under the target's lock, and the part that moves the target is
 * the costly one when the target is checked out (the user's `main`, usually): the compare-and-swap
 * of the ref, the durable record of the move, and `read-tree` bringing the checkout's files along
 * (branches.ts `advanceBranch`). With 16 agents on 2 cores the hand-off benchmark saw merges wait
 * 5 s (p50) for the lock, one behind the other, each moving `main` and its files on its own.
 *
 * So the merges that arrive while one runs wait together, and the next holder of the lock merges
 * them all as one train: each task branch is merged into the result of the one before (the same
 * merge-base, merge-tree and commit-tree that mergeTask runs, in the object database only), and the
 * target then moves once, from its old tip to the last merge commit, with one update of its files.
 * Every task still gets a merge commit of its own, with the target's previous state as its first
 * parent and the task branch as its second, in the order the merges were asked for; `git log
 * --first-parent main` reads as if they had merged one by one. A task that conflicts is left out
 * (its caller gets MergeConflictError, as from mergeTask; a missing branch, the same error as
 * there) and the train goes on without it. When
 * the target moved meanwhile (someone committed to it), the whole train is computed again from its
 * new tip, up to `MAX_ATTEMPTS` times. Any other failure fails every merge of that train, each
 * caller getting the error, which is what each would have got from its own merge.
 */

const MAX_ATTEMPTS = 5;

export interface TrainRequest {
  readonly branch: string;
  readonly message: string;
}

/**
 * Per request, in order: its merge, or what left it out of the train: its conflict
 * (MergeConflictError), or its branch missing.
 */
export type TrainOutcome =
  { readonly ok: true; readonly result: MergeResult } | { readonly ok: false; readonly error: Error };

/**
 * Merges each request's branch into `into`, in order, moving `into` once (see above). Conflicts
 * are outcomes; other failures throw.
 */
export async function mergeTrain(
  repo: GitRepo,
  requests: readonly TrainRequest[],
  into: string,
): Promise<TrainOutcome[]> {
  assertBranchName(into, 'target branch');
  for (const r of requests) assertBranchName(r.branch, 'branch to merge');
  const branches = [...new Set(requests.map((r) => r.branch))];
  return repo.locked({ branches: [into] }, async () => {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const names = [into, ...branches];
      const tips = (await looseBranchTips(repo, names)) ?? (await branchTips(repo, names));
      const ours = tips.get(into) ?? (await requireBranch(repo, into, 'target branch'));
      const outcomes: TrainOutcome[] = [];
      let tip = ours;
      const moved: string[] = [];
      let lastKind: MergeKind = 'up-to-date';
      for (const r of requests) {
        let theirs = tips.get(r.branch);
        if (!theirs) {
          try {
            theirs = await requireBranch(repo, r.branch, 'branch to merge');
          } catch (e) {
            outcomes.push({ ok: false, error: e as Error });
            continue;
          }
        }
        const step = await mergeCommit(repo, tip, theirs, r.branch, into, r.message);
        if (step.kind === 'conflict') {
          outcomes.push({ ok: false, error: step.error });
          continue;
        }
        tip = step.sha;
        if (step.kind !== 'up-to-date') {
          moved.push(r.branch);
          lastKind = step.kind;
        }
        outcomes.push({ ok: true, result: { sha: step.sha, kind: step.kind, attempts: attempt } });
      }
      if (tip === ours) return outcomes;
      // One branch: the reflog says what mergeTask's would; several: which, in order.
      const reason =
        moved.length === 1
          ? `pipeline: ${lastKind} ${moved[0]!} into ${into}`
          : `pipeline: merge ${moved.length} task branches into ${into}: ${moved.join(', ')}`;
      const outcome = await advanceBranch(repo, into, tip, ours, reason);
      if (outcome === 'advanced') return outcomes;
    }
    throw new PipelineError(
      'git',
      `Could not merge ${branches.join(', ')} into ${into}: ${into} moved during each of ${MAX_ATTEMPTS} attempts.`,
      { where: into, fix: `Something keeps committing to ${into}; pause it and run the merge again.` },
    );
  });
}

interface Waiting extends TrainRequest {
  readonly resolve: (o: TrainOutcome) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * The trains of one repository, one per target branch: `merge` joins the train that leaves next,
 * which leaves as soon as the one before it has moved the target.
 */
export class MergeTrains {
  private readonly waiting = new Map<string, Waiting[]>();
  private readonly running = new Set<string>();

  constructor(private readonly repo: GitRepo) {}

  merge(branch: string, into: string, message: string): Promise<TrainOutcome> {
    return new Promise<TrainOutcome>((resolve, reject) => {
      let queue = this.waiting.get(into);
      if (!queue) this.waiting.set(into, (queue = []));
      queue.push({ branch, message, resolve, reject });
      if (!this.running.has(into)) void this.run(into);
    });
  }

  private async run(into: string): Promise<void> {
    this.running.add(into);
    try {
      for (let queue = this.waiting.get(into); queue && queue.length > 0; queue = this.waiting.get(into)) {
        this.waiting.delete(into);
        try {
          const outcomes = await mergeTrain(this.repo, queue, into);
          queue.forEach((w, i) => w.resolve(outcomes[i]!));
        } catch (e) {
          for (const w of queue) w.reject(e);
        }
      }
    } finally {
      this.running.delete(into);
    }
  }
}
