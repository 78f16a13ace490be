import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { importedNewTasks, importFile } from '../engine/import/taskImport';
import { assertTaskId } from '../engine/model/ids';
import { PRIORITIES, TASK_STATUSES, type Priority, type Task, type TaskStatus } from '../engine/model/schema';
import { assertTaskPaths } from '../engine/model/taskFactory';
import { registerTaskExport } from './exportCommand';
import { registerTaskEditing } from './taskEditCommands';
import { taskUsageLines } from './taskUsageLines';
import { withPipeline } from './openPipeline';
import { eprintln, printJson, println, printable, splitList, table } from './output';

/** A priority given as `--priority` or as the positional argument of `task priority` (`where`). */
function parsePriority(v: string | undefined, where: string): Priority | undefined {
  if (v === undefined) return undefined;
  if (!(PRIORITIES as readonly string[]).includes(v)) {
    throw new PipelineError('usage', `Unknown priority ${JSON.stringify(v)}.`, {
      where,
      fix: `Use one of ${PRIORITIES.join(', ')}.`,
    });
  }
  return v as Priority;
}

function parseStatus(v: string | undefined): TaskStatus | undefined {
  if (v === undefined) return undefined;
  if (!(TASK_STATUSES as readonly string[]).includes(v)) {
    throw new PipelineError('usage', `Unknown task status ${JSON.stringify(v)}.`, {
      where: '--status',
      fix: `Use one of ${TASK_STATUSES.join(', ')}.`,
    });
  }
  return v as TaskStatus;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, ...splitList(v)];
}

function taskLine(t: Task): string[] {
  return [t.id, t.status, t.stage, t.assigned_to ?? '-', t.priority, t.prerequisites.join(',') || '-', t.title];
}

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('manage the tasks');

  task
    .command('add <title>')
    .description('add a task')
    .option('--id <id>', 'its id (default: the next TASK-NNN)')
    .option('--depends-on <ids>', 'prerequisites, comma-separated', collect, [])
    .option('--priority <priority>', `one of ${PRIORITIES.join(', ')}`, 'medium')
    .option('--paths <globs>', 'paths it is expected to touch, comma-separated (for conflict avoidance)', collect, [])
    .option('--label <label>', 'a label (repeatable, or comma-separated)', collect, [])
    .option('--description <markdown>', 'its description')
    .option('--description-file <file>', 'read its description from a file')
    .action(
      async (
        title: string,
        o: {
          id?: string;
          dependsOn: string[];
          priority?: string;
          paths: string[];
          label: string[];
          description?: string;
          descriptionFile?: string;
        },
      ) => {
        // An empty --id is a mistake to report, not a request for a generated id.
        if (o.id !== undefined) assertTaskId(o.id, '--id');
        for (const dep of o.dependsOn) assertTaskId(dep, '--depends-on');
        assertTaskPaths(o.paths, '--paths', 'usage');
        let description = o.description ?? '';
        if (o.descriptionFile) description = await readFile(o.descriptionFile, 'utf8');
        const priority = parsePriority(o.priority, '--priority');
        await withPipeline('auto', 'pipeline task add', async (p) => {
          const [t] = await p.addTasks([
            {
              spec: {
                title,
                description,
                prerequisites: o.dependsOn,
                paths: o.paths,
                labels: o.label,
                ...(o.id !== undefined ? { id: o.id } : {}),
                ...(priority ? { priority } : {}),
              },
              source: 'arguments',
            },
          ]);
          println(`Added ${t!.id}: ${printable(t!.title)}`);
        });
      },
    );

  task
    .command('list')
    .description('list the tasks')
    .option('--status <status>', `only tasks with this status (${TASK_STATUSES.join(', ')})`)
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; json?: boolean }) => {
      const status = parseStatus(o.status);
      await withPipeline('follow', 'pipeline task list', (p) => {
        const tasks = Object.values(p.state.tasks)
          .filter((t) => !status || t.status === status)
          .sort((a, b) => a.seq - b.seq);
        if (o.json) return printJson(tasks);
        if (tasks.length === 0)
          return println(status ? `No ${status} tasks.` : 'No tasks. Add one with `pipeline task add <title>`.');
        println(table(['ID', 'STATUS', 'STAGE', 'AGENT', 'PRIORITY', 'NEEDS', 'TITLE'], tasks.map(taskLine)));
      });
    });

  task
    .command('show <id>')
    .description('show one task, its history and why it waits')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline task show', (p) => {
        const t = p.task(id);
        if (o.json) return printJson(t);
        const inline = (s: string) => printable(s);
        println(`${t.id}: ${inline(t.title)}`);
        println(`  status:        ${t.status}${t.blocked_reason ? ` (${inline(t.blocked_reason)})` : ''}`);
        println(`  stage:         ${t.stage}`);
        println(`  agent:         ${t.assigned_to ?? '-'}`);
        println(`  priority:      ${t.priority}`);
        println(`  prerequisites: ${t.prerequisites.join(', ') || '-'}`);
        println(`  paths:         ${inline(t.paths.join(', ')) || '-'}`);
        println(`  labels:        ${t.labels.join(', ') || '-'}`);
        println(`  branch:        ${t.branch}`);
        println(`  attempt:       ${t.attempt} (failures at this stage: ${t.failures})`);
        if (t.merged_commit) println(`  merged:        ${t.merged_commit}`);
        if (t.status === 'queued' || t.status === 'pending')
          println(`  waiting:       ${inline(p.scheduler.explain(t.id, p.state, Date.now()))}`);
        for (const line of taskUsageLines(t)) println(line);
        if (t.description) println(`\n${t.description}\n`);
        if (t.history.length) {
          println('  history:');
          for (const h of t.history)
            println(
              `    ${h.at}  ${h.event.padEnd(17)} ${h.from} → ${h.to} (${h.stage})${h.agent ? ` by ${h.agent}` : ''}${h.note ? `: ${inline(h.note)}` : ''}`,
            );
        }
      });
    });

  task
    .command('import <file>')
    .description("import tasks from the seed's state JSON or a Task Master tasks.json")
    .option('--prefix <prefix>', 'id prefix for Task Master ids (default TM)')
    .option('--tag <tag>', 'the Task Master tag to import (default: master)')
    .action(async (file: string, o: { prefix?: string; tag?: string }) => {
      const r = await importFile(file, { ...(o.prefix ? { prefix: o.prefix } : {}), ...(o.tag ? { tag: o.tag } : {}) });
      for (const w of r.warnings) eprintln(`pipeline: warning: ${printable(w)}`);
      await withPipeline('auto', 'pipeline task import', async (p) => {
        const added = await p.addTasks(importedNewTasks(file, r));
        const by: Record<string, number> = {};
        for (const t of added) by[t.status] = (by[t.status] ?? 0) + 1;
        println(
          `Imported ${added.length} task(s) from ${file} (${r.format}): ${Object.entries(by)
            .map(([s, n]) => `${n} ${s}`)
            .join(', ')}.`,
        );
      });
    });

  registerTaskExport(task);
  registerTaskEditing(task);

  const simple = (
    name: string,
    description: string,
    fn: (p: Parameters<Parameters<typeof withPipeline>[2]>[0], id: string, arg: string | undefined) => Promise<Task>,
    arg?: string,
  ) => {
    const c = task.command(`${name} <id>${arg ? ` [${arg}]` : ''}`).description(description);
    c.action(async (id: string, a: string | undefined) => {
      await withPipeline('auto', `pipeline task ${name}`, async (p) => {
        const t = await fn(p, id, typeof a === 'string' ? a : undefined);
        println(
          `${t.id} is ${t.status}${t.status === 'blocked' && t.blocked_reason ? ` (${printable(t.blocked_reason)})` : ''}, priority ${t.priority}.`,
        );
      });
    });
  };
  simple(
    'block',
    'block a task (it waits for a person)',
    (p, id, reason) => p.blockTask(id, reason ?? 'blocked by a person'),
    'reason',
  );
  simple('unblock', 'release a blocked task', (p, id) => p.unblockTask(id));
  simple('retry', 'retry a blocked task at the stage where it stopped', (p, id) => p.retryTask(id));
  simple('cancel', 'cancel a task', (p, id, reason) => p.cancelTask(id, reason ?? 'cancelled by a person'), 'reason');
  simple(
    'priority',
    `change a task's priority (${PRIORITIES.join(', ')})`,
    (p, id, prio) => {
      const pr = parsePriority(prio, 'the <priority> argument of `pipeline task priority`');
      if (!pr)
        throw new PipelineError('usage', 'Give the new priority.', {
          where: 'the <priority> argument of `pipeline task priority`',
          fix: `pipeline task priority ${id} <${PRIORITIES.join('|')}>`,
        });
      return p.reprioritise(id, pr);
    },
    'priority',
  );
}
