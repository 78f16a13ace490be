import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, git, json, mentions, ok, requireCli, shown, status, withRepo } from './cliKit';

/**
 * Pilot mode to production by `pipeline pilot promote`, and the housekeeping a real run leaves
 * behind it: merged task branches deleted, a removed agent's worktree removed (or kept, saying why),
 * and what `task edit` and `task remove` say of work that has started or finished.
 */

requireCli();

interface PromoteJson {
  source: string;
  into: string;
  commits: number;
  tasks: string[];
  conflicts: string[];
  sha?: string;
  promoted?: boolean;
  dryRun?: boolean;
}

test('pilot run, then pilot promote: a dry run, a conflict that changes nothing, one merge commit naming the tasks, then nothing to do', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'mode', 'rollout', 'pilot');
    mentions(await fails(dir, 1, 'pilot', 'promote'), 'pipeline/pilot', 'does not exist');
    await ok(dir, 'task', 'add', 'Pilot one', '--label', 'pilot');
    await ok(dir, 'task', 'add', 'Pilot two', '--label', 'pilot', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Not in the pilot');
    await ok(
      dir,
      'task',
      'add',
      'Needs a person',
      '--label',
      'pilot',
      '--description',
      'scripted: block architect ask first',
    );

    const run = await cli(dir, ['run', '--until-idle'], { timeoutMs: 120_000 });
    mentions(run.stdout, 'TASK-001 merged', 'TASK-002 merged', 'blocked: TASK-004');
    const mainBefore = await git(dir, 'rev-parse', 'main');
    const pilotTip = await git(dir, 'rev-parse', 'pipeline/pilot');
    // Housekeeping: the merged task branches are gone; the blocked task's branch and the pilot branch stay.
    assert.deepEqual((await git(dir, 'branch', '--list', 'pipeline/*', '--format=%(refname:short)')).split('\n'), [
      'pipeline/TASK-004',
      'pipeline/pilot',
    ]);

    const commits = Number(await git(dir, 'rev-list', '--count', 'main..pipeline/pilot'));
    assert.ok(commits >= 2, `the pilot branch has the tasks' commits (${commits})`);
    assert.equal(
      (await ok(dir, 'pilot', 'promote', '--dry-run')).trim(),
      `Would promote ${commits} commit(s) of pipeline/pilot into main (TASK-001, TASK-002).`,
    );
    assert.deepEqual(await json<PromoteJson>(dir, 'pilot', 'promote', '--dry-run', '--json'), {
      source: 'pipeline/pilot',
      into: 'main',
      commits,
      tasks: ['TASK-001', 'TASK-002'],
      conflicts: [],
      dryRun: true,
    });
    assert.equal(await git(dir, 'rev-parse', 'main'), mainBefore, 'a dry run changes nothing');

    // Someone changed, on main, a file the pilot's work changed too: refused, nothing changed.
    const design = 'docs/design/task-001.md';
    const pilotDesign = await git(dir, 'show', `pipeline/pilot:${design}`);
    await mkdir(join(dir, 'docs', 'design'), { recursive: true });
    await writeFile(join(dir, design), 'A design written by hand on main.\n');
    await git(dir, 'add', design);
    await git(dir, 'commit', '--quiet', '-m', 'a design on main');
    const moved = await git(dir, 'rev-parse', 'main');
    const dry = await ok(dir, 'pilot', 'promote', '--dry-run');
    mentions(dry, `It would conflict in 1 file(s): ${design}.`);
    const conflict = await fails(dir, 1, 'pilot', 'promote');
    mentions(conflict, design, 'Nothing was changed', 'merge main into pipeline/pilot');
    assert.equal(await git(dir, 'rev-parse', 'main'), moved, 'main is where it was');
    assert.equal(await git(dir, 'rev-parse', 'pipeline/pilot'), pilotTip, 'so is the pilot branch');
    assert.equal(await git(dir, 'status', '--porcelain', '--untracked-files=no'), '', 'the checkout is clean');
    await git(dir, 'reset', '--quiet', '--hard', mainBefore);

    const promoted = await ok(dir, 'pilot', 'promote');
    const sha = await git(dir, 'rev-parse', 'main');
    assert.equal(
      promoted.trim(),
      `Promoted pipeline/pilot into main as ${sha.slice(0, 12)}: ${commits} commit(s) (TASK-001, TASK-002).`,
    );
    assert.equal(
      await git(dir, 'log', '-1', '--format=%s', 'main'),
      'Promote pipeline/pilot into main: TASK-001, TASK-002',
    );
    assert.deepEqual((await git(dir, 'rev-list', '--parents', '-n', '1', 'main')).split(' ').slice(1), [
      mainBefore,
      pilotTip,
    ]);
    assert.equal(await readFile(join(dir, design), 'utf8'), `${pilotDesign}\n`, 'the checkout of main has the work');
    assert.equal(await git(dir, 'status', '--porcelain', '--untracked-files=no'), '');

    assert.equal(
      (await ok(dir, 'pilot', 'promote')).trim(),
      'Nothing to promote: main has everything pipeline/pilot has.',
    );
    const again = await json<PromoteJson>(dir, 'pilot', 'promote', '--json');
    assert.deepEqual([again.promoted, again.commits, again.sha], [false, 0, sha]);

    // The rollout check's promotion condition is met; the blocked pilot task is what is left.
    let check = await cli(dir, ['rollout', 'check']);
    assert.equal(check.code, 3, shown(check));
    mentions(
      check.stdout,
      'ok   2 pilot task(s) merged',
      'ok   pipeline/pilot is promoted into main',
      'FAIL pilot task(s) blocked: TASK-004',
    );
    await ok(dir, 'task', 'cancel', 'TASK-004', 'not for the pilot');
    check = await cli(dir, ['rollout', 'check']);
    assert.equal(check.code, 0, shown(check));
    mentions(check.stdout, 'pilot → production: READY');
  });
});

test('after a run: started or finished work is not removed, a finished task keeps its prerequisites; a removed agent takes its clean worktree with it, a dirty one stays', async () => {
  await withRepo({ preset: 'scripted' }, async ({ base, dir }) => {
    await ok(dir, 'task', 'add', 'Done soon', '--paths', 'a/**');
    await ok(dir, 'task', 'add', 'Later');
    await ok(dir, 'task', 'add', 'Stuck', '--description', 'scripted: block architect needs a decision');
    const run = await cli(dir, ['run', '--until-idle'], { timeoutMs: 120_000 });
    mentions(run.stdout, 'TASK-001 merged', 'blocked: TASK-003');
    assert.equal(await git(dir, 'branch', '--list', 'pipeline/TASK-001'), '', 'the merged branch was deleted');

    mentions(
      await fails(dir, 1, 'task', 'remove', 'TASK-003'),
      'TASK-003 has started (blocked at architect, attempt 1)',
      'pipeline task cancel TASK-003',
    );
    mentions(await fails(dir, 1, 'task', 'remove', 'TASK-001'), 'TASK-001 is done; finished tasks stay as a record');
    mentions(
      await fails(dir, 1, 'task', 'edit', 'TASK-001', '--depends-on', 'TASK-002'),
      'TASK-001 is done; its prerequisites no longer matter',
      'at: --depends-on',
    );
    assert.equal(
      (await ok(dir, 'task', 'edit', 'TASK-001', '--title', 'Done, renamed')).trim(),
      'Edited TASK-001: title "Done, renamed".',
    );
    // A blocked task that has started may wait for more: it enters again only once unblocked.
    mentions(await ok(dir, 'task', 'edit', 'TASK-003', '--depends-on', 'TASK-002'), 'prerequisites TASK-002');

    const worktrees = join(base, 'repo.pipeline-worktrees');
    const tester = join(worktrees, 'tester');
    const implementer = join(worktrees, 'implementer');
    assert.ok(existsSync(tester) && existsSync(implementer), 'the agents worked in their worktrees');

    const removed = await cli(dir, ['agent', 'remove', 'tester']);
    assert.equal(removed.code, 0, shown(removed));
    assert.equal(removed.stdout, `Removed agent tester.\nRemoved its worktree ${tester}.\n`);
    assert.equal(existsSync(tester), false);
    assert.doesNotMatch(await git(dir, 'worktree', 'list'), /tester/);

    await writeFile(join(implementer, 'notes.txt'), 'not saved anywhere else\n');
    const kept = await cli(dir, ['agent', 'remove', 'implementer']);
    assert.equal(kept.code, 0, shown(kept));
    assert.equal(kept.stdout, 'Removed agent implementer.\n');
    mentions(
      kept.stderr,
      `pipeline: warning: kept the worktree of implementer at ${implementer}`,
      'notes.txt',
      `git worktree remove --force "${implementer}"`,
    );
    assert.equal(await readFile(join(implementer, 'notes.txt'), 'utf8'), 'not saved anywhere else\n');
    const s = await status(dir);
    assert.deepEqual(Object.keys(s.agents).sort(), ['architect', 'supervisor']);
  });
});
