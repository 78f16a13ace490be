import { GitRepo } from '../git/gitRepo';
import type { Pipeline } from '../pipeline';
import type { GitFacts } from './rolloutCheck';

/** What the rollout check needs to know of the repository, read with read-only git calls. */
export async function gitFactsOf(p: Pipeline): Promise<GitFacts> {
  let repo: GitRepo;
  try {
    repo = await GitRepo.open(p.home.root);
  } catch {
    return { isRepo: false, targetExists: false, pilotAhead: null };
  }
  const target = await repo.branchHead(p.config.targetBranch);
  const pilot = target ? await repo.branchHead(p.config.pilotBranch) : undefined;
  const pilotAhead = pilot
    ? Number(
        (
          await repo.read([
            'rev-list',
            '--count',
            `refs/heads/${p.config.targetBranch}..refs/heads/${p.config.pilotBranch}`,
          ])
        ).trim(),
      )
    : null;
  return { isRepo: true, targetExists: target !== undefined, pilotAhead };
}
