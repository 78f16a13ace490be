import { PipelineError } from '../../errors';
import { GitCommandError } from '../gitErrors';
import type { GitRepo } from '../gitRepo';
import { assertBranchName } from '../refNames';
import { lockKey, withLocks, type LockRequest } from '../repoLock';
import { remoteFailure, type RemoteContext } from './remoteErrors';

/**
 * The shared remote as one clone sees it: its name and URL, fetching branches into their
 * remote-tracking refs, pushing one ref with git's own checks, and the locks around both.
 *
 * - Branches are fetched with explicit refspecs (`+refs/heads/b:refs/remotes/<remote>/b`), never
 *   the remote's configured ones: only what an operation needs crosses the network, and the
 *   remote-tracking ref is a mirror of the remote (forced), never a branch of ours.
 * - `--no-write-fetch-head`: concurrent fetches of one clone would otherwise contend for FETCH_HEAD.
 * - A push is never forced. A publish is a plain push (the remote refuses what is not a
 *   fast-forward); a merge pushes with `--force-with-lease=<ref>:<expected>`, which the remote applies
 *   only while its branch is still at the expected commit (receive-pack checks the old value under
 *   its ref lock), so two machines pushing at the same moment cannot both win.
 * - Operations lock what they rewrite in this clone (repoLock.ts, level `ref`): the local branch and
 *   the remote-tracking ref, so two operations of this process on one branch queue instead of racing.
 */

const ZERO_OID = '0000000000000000000000000000000000000000';
const REMOTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface Remote {
  readonly repo: GitRepo;
  /** The remote's name in this clone (`origin`). */
  readonly name: string;
  /** Its URL without any user or password, for messages. */
  readonly url: string;
}

/** The remote `name` of the clone `repo`; a clear error when the clone has no such remote. */
export async function openRemote(repo: GitRepo, name = 'origin'): Promise<Remote> {
  if (!REMOTE_NAME.test(name)) {
    throw new PipelineError('invalid-config', `Invalid git remote name ${JSON.stringify(name)}.`, {
      where: 'remote',
      fix: 'Use the name of a remote of the clone, such as "origin" (git remote -v lists them).',
    });
  }
  const r = await repo.readResult(['config', '--get', `remote.${name}.url`], { okExitCodes: [0, 1] });
  const url = r.stdout.trim();
  if (r.exitCode !== 0 || !url) {
    throw new PipelineError('invalid-config', `The clone ${repo.root} has no remote named ${name}.`, {
      where: 'remote',
      fix: `Add the shared repository as ${name}: git -C "${repo.root}" remote add ${name} <url>`,
    });
  }
  return { repo, name, url: withoutCredentials(url) };
}

/** `https://user:token@host/x` → `https://host/x`: a URL fit for a message or a log. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** The remote-tracking ref of `branch` (`refs/remotes/origin/pipeline/TASK-001`). */
export function trackingRef(remote: Remote, branch: string): string {
  return `refs/remotes/${remote.name}/${assertBranchName(branch)}`;
}

export function context(remote: Remote, branch: string, action: string): RemoteContext {
  return { remote: remote.name, url: remote.url, branch, action };
}

/**
 * Runs `fn` holding the repository shared, the local branches `heads` and the remote-tracking refs of
 * `tracking` (all at the `ref` level, taken in order).
 */
export async function withRemoteLocks<T>(
  remote: Remote,
  refs: { readonly heads?: readonly string[]; readonly tracking?: readonly string[] },
  fn: () => Promise<T>,
): Promise<T> {
  const { repo } = remote;
  const requests: LockRequest[] = [{ key: repo.repositoryKey, mode: 'shared' }];
  for (const b of refs.heads ?? [])
    requests.push({ key: lockKey(repo.commonDir, 'ref', `refs/heads/${assertBranchName(b)}`), mode: 'exclusive' });
  for (const b of refs.tracking ?? [])
    requests.push({ key: lockKey(repo.commonDir, 'ref', trackingRef(remote, b)), mode: 'exclusive' });
  return withLocks(requests, fn);
}

/** `couldn't find remote ref refs/heads/x`: the branch does not exist on the remote. */
const MISSING_REF = /couldn't find remote ref (refs\/heads\/\S+)/;

/**
 * Fetches `branches` from the remote into their remote-tracking refs and returns each one's commit on
 * the remote, undefined for a branch the remote does not have (its stale remote-tracking ref, if
 * any, is deleted). One network round trip when every branch exists. The caller holds the
 * remote-tracking refs' locks (withRemoteLocks).
 */
export async function fetchBranches(
  remote: Remote,
  branches: readonly string[],
  action: string,
  /** The branch a failure's message names; the first of `branches` by default. */
  about: string = branches[0] ?? '',
): Promise<Map<string, string | undefined>> {
  const { repo } = remote;
  const wanted = [...new Set(branches.map((b) => assertBranchName(b)))];
  const missing = new Set<string>();
  for (;;) {
    const present = wanted.filter((b) => !missing.has(b));
    if (present.length === 0) break;
    const refspecs = present.map((b) => `+refs/heads/${b}:${trackingRef(remote, b)}`);
    try {
      await repo.mutate(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', remote.name, ...refspecs]);
      break;
    } catch (e) {
      const gone = e instanceof GitCommandError ? MISSING_REF.exec(e.stderr)?.[1] : undefined;
      const branch = gone?.slice('refs/heads/'.length);
      if (branch === undefined || !present.includes(branch)) throw remoteFailure(e, context(remote, about, action));
      missing.add(branch);
    }
  }
  const tips = new Map<string, string | undefined>();
  for (const b of wanted) {
    if (missing.has(b)) {
      // The remote no longer has it: a tracking ref left from an earlier fetch would lie.
      await repo.mutate(['update-ref', '-d', trackingRef(remote, b)]);
      tips.set(b, undefined);
    } else {
      tips.set(b, await repo.headOf(trackingRef(remote, b)));
    }
  }
  return tips;
}

export type PushOutcome =
  /** The remote branch is now at the commit pushed (it was created, fast-forwarded or already there). */
  | {
      readonly kind: 'pushed';
      readonly status: 'created' | 'fast-forward' | 'up-to-date' | 'forced' | 'deleted';
    }
  /** The remote branch was not where the push needed it (it moved, or holds commits we lack). */
  | { readonly kind: 'moved'; readonly reason: string }
  /** The remote declined for another reason (a hook, branch protection). */
  | { readonly kind: 'declined'; readonly reason: string };

/** Rejections that mean "the remote branch is elsewhere": fetch, recompute and try again (or refuse). */
const MOVED =
  /non-fast-forward|fetch first|stale info|failed to lock|failed to update ref|cannot lock|but expected|incorrect old value|already exists/i;

/**
 * Pushes `sha` to the remote's `branch` (`null`: deletes it, with a lease only), never forced: a plain push (the remote accepts a
 * fast-forward only) or, with `lease`, one the remote accepts only while its branch is at `lease`
 * (`null`: only while it does not exist). On success the remote-tracking ref is set to `sha`. The
 * caller holds that ref's lock. Unreachable, authentication and missing-repository failures are
 * thrown as remoteErrors.ts classifies them.
 */
export async function pushBranch(
  remote: Remote,
  sha: string | null,
  branch: string,
  action: string,
  lease?: string | null,
): Promise<PushOutcome> {
  const { repo } = remote;
  const ref = `refs/heads/${assertBranchName(branch)}`;
  const args = ['push', '--porcelain', '--no-verify'];
  if (lease !== undefined) args.push(`--force-with-lease=${ref}:${lease ?? ''}`);
  args.push(remote.name, `${sha ?? ''}:${ref}`);
  let out: { stdout: string; exitCode: number };
  try {
    out = await repo.mutateResult(args, { okExitCodes: [0, 1] });
  } catch (e) {
    throw remoteFailure(e, context(remote, branch, action));
  }
  const line = out.stdout.split('\n').find((l) => /^[ +\-*=!]\t/.test(l) && l.includes(`:${ref}\t`));
  if (!line) {
    // No status line for our ref: git failed before talking about it (exit 1 with only stderr).
    if (out.exitCode === 0) return { kind: 'pushed', status: 'up-to-date' };
    throw new PipelineError(
      'git',
      `git push to ${remote.name} (${remote.url}) failed for ${branch}: ${out.stdout.trim()}`,
      {
        where: `${remote.name} ${branch}`,
        fix: `Try the push by hand to see git's message: git -C "${repo.root}" push ${remote.name} ${sha ?? ''}:${ref}`,
      },
    );
  }
  const flag = line[0];
  const summary = line.split('\t')[2] ?? '';
  if (flag === '!') {
    const reason = /\(([^)]*)\)/.exec(summary)?.[1] ?? summary;
    return MOVED.test(summary) ? { kind: 'moved', reason } : { kind: 'declined', reason };
  }
  if (sha === null) await repo.mutate(['update-ref', '-d', trackingRef(remote, branch)]);
  else await repo.mutate(['update-ref', '-m', `pipeline: pushed ${branch}`, trackingRef(remote, branch), sha]);
  const status =
    flag === '*'
      ? 'created'
      : flag === '='
        ? 'up-to-date'
        : flag === '-'
          ? 'deleted'
          : flag === '+'
            ? 'forced'
            : 'fast-forward';
  return { kind: 'pushed', status };
}

/** The all-zero object name: "no such ref" as the old value of `update-ref`. */
export function zeroOid(sha: string | undefined): string {
  return '0'.repeat(sha?.length ?? ZERO_OID.length);
}
