import type { Command } from 'commander';
import { GitRepo } from '../engine/git/gitRepo';
import { planPromotion, promoteBranch } from '../engine/git/promote';
import { withPipeline } from './openPipeline';
import { printJson, println } from './output';

/**
 * `pipeline pilot promote [--dry-run] [--json]`: merges the pilot branch (configuration
 * `pilotBranch`), where pilot mode's merges land, into the target branch, as one merge commit. The
 * merge is done the way every task's is (a `git merge-tree` dry run, then a compare-and-swap of the
 * target): a conflict changes nothing and names the files.
 */
export function registerPilotCommands(program: Command): void {
  const pilot = program.command('pilot').description("pilot mode's integration branch");
  pilot
    .command('promote')
    .description('merge the pilot branch into the target branch (a conflict changes nothing and names the files)')
    .option('--dry-run', 'say what would be promoted, and whether it would conflict, changing nothing')
    .option('--json', 'print JSON')
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      await withPipeline('follow', 'pipeline pilot promote', async (p) => {
        const { pilotBranch, targetBranch } = p.config;
        const repo = await GitRepo.open(p.home.root);
        // The pipeline's record names the tasks whose merges were fast-forwards (no merge message).
        const merged = Object.values(p.state.tasks).flatMap((t) =>
          t.merged_commit ? [{ id: t.id, commit: t.merged_commit }] : [],
        );
        if (o.dryRun) {
          const plan = await planPromotion(repo, pilotBranch, targetBranch, merged);
          if (o.json) return printJson({ ...plan, dryRun: true });
          if (plan.commits === 0)
            return println(`Nothing to promote: ${targetBranch} has everything ${pilotBranch} has.`);
          println(
            `Would promote ${plan.commits} commit(s) of ${pilotBranch} into ${targetBranch}${plan.tasks.length ? ` (${plan.tasks.join(', ')})` : ''}.`,
          );
          if (plan.conflicts.length)
            println(`It would conflict in ${plan.conflicts.length} file(s): ${plan.conflicts.join(', ')}.`);
          return;
        }
        const r = await promoteBranch(repo, pilotBranch, targetBranch, merged);
        if (o.json) return printJson(r);
        if (!r.promoted) return println(`Nothing to promote: ${targetBranch} has everything ${pilotBranch} has.`);
        println(
          `Promoted ${pilotBranch} into ${targetBranch} as ${r.sha.slice(0, 12)}: ${r.commits} commit(s)${r.tasks.length ? ` (${r.tasks.join(', ')})` : ''}.`,
        );
      });
    });
}
