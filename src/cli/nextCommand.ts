import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { withPipeline } from './openPipeline';
import { printJson, println } from './output';

/**
 * `pipeline next [--json]`: the task that would enter the pipeline next and why (the question Task
 * Master's `next` answers), or, when none is ready, what holds back the best candidates. Read-only,
 * and cheap on a large pipeline: one pass over the tasks after the state is loaded.
 */
export function registerNextCommand(program: Command): void {
  program
    .command('next')
    .description('the task that enters the pipeline next and why, or what holds the best candidates back')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'when none is ready, how many waiting candidates to explain', '3')
    .action(async (o: { json?: boolean; limit: string }) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new PipelineError(
          'usage',
          `--limit takes a whole number of at least 1, not ${JSON.stringify(o.limit)}.`,
          {
            where: '--limit',
          },
        );
      await withPipeline('follow', 'pipeline next', (p) => {
        const r = p.next(limit);
        if (o.json) return printJson(r);
        if (r.next) {
          const n = r.next;
          println(`${n.id}: ${n.title}`);
          println(`  priority: ${n.priority}`);
          println(`  why:      ${n.why}`);
          println(`  now:      ${n.explanation}`);
          return;
        }
        if (r.notStarted === 0) {
          println(
            r.inFlight > 0
              ? `Every task has entered the pipeline; ${r.inFlight} ${r.inFlight === 1 ? 'is' : 'are'} still under way.`
              : 'No task is waiting to enter the pipeline. Add one with `pipeline task add <title>`.',
          );
          return;
        }
        println(
          `No task is ready to enter the pipeline (${r.notStarted} not started${r.inFlight ? `, ${r.inFlight} under way` : ''}). What holds back the best candidates:`,
        );
        for (const w of r.waiting) println(`  ${w.id} (${w.priority}) ${w.title}\n    ${w.explanation}`);
      });
    });
}
