import { hostname } from 'node:os';
import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { taskChanges } from '../engine/git/changes';
import { GitRepo } from '../engine/git/gitRepo';
import { awaitingReview, tasksAwaitingReview, whereAfterReview } from '../engine/model/humanStage';
import type { Pipeline, ReviewAnswer } from '../engine/pipeline';
import { withPipeline } from './openPipeline';
import { println, table } from './output';

const VERDICTS = ['approve', 'changes', 'block'] as const;
const ANSWER_HELP = 'approve | changes "<what to change>" | block "<reason>"';

/**
 * `pipeline review`: a person's side of a human stage (a stage whose role is `human`). Without an id
 * it lists the tasks awaiting review; with an id alone it shows what the task changed against the
 * branch it will merge into; with a verdict it answers, as an agent's completion marker would.
 */
export function registerReviewCommand(program: Command): void {
  program
    .command('review [id] [verdict] [text...]')
    .description(`review a task waiting at a human stage: ${ANSWER_HELP}; without an id, list them`)
    .action(async (id: string | undefined, verdict: string | undefined, words: string[]) => {
      if (id === undefined) return withPipeline('follow', 'pipeline review', listAwaiting);
      if (verdict === undefined) return withPipeline('follow', 'pipeline review', (p) => showChanges(p, id));
      const answer = parseAnswer(id, verdict, words.join(' '));
      await withPipeline('auto', 'pipeline review', async (p) => {
        const t = await p.reviewTask(id, answer);
        println(`${t.id} ${verdictDone(answer)}: ${whereAfterReview(t, pipelineRuns(p))}.`);
      });
    });
}

function parseAnswer(id: string, verdict: string, text: string): ReviewAnswer {
  switch (verdict) {
    case 'approve':
      if (text.trim())
        throw new PipelineError('usage', 'An approval takes no text.', {
          where: 'approve',
          fix: `pipeline review ${id} approve (or request changes: pipeline review ${id} changes "${text.trim()}").`,
        });
      return { verdict: 'approve' };
    case 'changes':
      return { verdict: 'changes', text };
    case 'block':
      return { verdict: 'block', reason: text };
    default:
      throw new PipelineError('usage', `Unknown review answer ${JSON.stringify(verdict)}.`, {
        where: verdict,
        fix: `Answer with one of ${VERDICTS.join(', ')}: pipeline review ${id} ${ANSWER_HELP}.`,
      });
  }
}

/**
 * Whether a pipeline runs now to act on the answer: another process leads for longer than one
 * change (`pipeline run`, a started VS Code window). When this command led for the answer alone,
 * nothing merges until the pipeline runs.
 */
function pipelineRuns(p: Pipeline): boolean {
  const leader = p.leader;
  const itself = leader !== null && leader.pid === process.pid && leader.host === hostname();
  return !p.isLeader && leader !== null && !itself && leader.oneChange !== true;
}

function verdictDone(a: ReviewAnswer): string {
  return a.verdict === 'approve'
    ? 'approved'
    : a.verdict === 'changes'
      ? 'sent back with changes requested'
      : 'blocked';
}

function listAwaiting(p: Pipeline): void {
  const ids = tasksAwaitingReview(p.state.tasks, p.config);
  if (ids.length === 0) return println('No task awaits review.');
  const rows = ids.map((id) => {
    const t = p.state.tasks[id]!;
    return [t.id, t.stage, t.priority, t.title];
  });
  println(table(['ID', 'STAGE', 'PRIORITY', 'TITLE'], rows));
  println(`\nSee what one changed with \`pipeline review <id>\`; answer with \`pipeline review <id> ${ANSWER_HELP}\`.`);
}

/** What the task changed against the branch it merges into, and how to answer. */
async function showChanges(p: Pipeline, id: string): Promise<void> {
  const t = p.task(id);
  const into = p.state.mode === 'pilot' ? p.config.pilotBranch : p.config.targetBranch;
  const c = await taskChanges(await GitRepo.open(p.home.root), t.id, into);
  println(`${t.id}: ${t.title}`);
  println(`  ${t.branch} against ${into}: ${c.commits.length} commit(s), ${c.files.length} file(s)`);
  for (const f of c.files) println(`    ${f.status.padEnd(9)} ${f.from ? `${f.from} → ` : ''}${f.path}`);
  if (c.commits.length) println('  commits:');
  for (const k of c.commits) println(`    ${k.sha.slice(0, 10)} ${k.subject}`);
  println(`  full diff: git diff ${into}...${t.branch}`);
  println(
    awaitingReview(t, p.config)
      ? `\nAnswer with: pipeline review ${t.id} ${ANSWER_HELP}`
      : `\n${t.id} is not awaiting review (it is ${t.status} at ${t.stage}).`,
  );
}
