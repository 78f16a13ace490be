import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { assertTaskId } from '../engine/model/ids';
import { PRIORITIES, type Priority } from '../engine/model/schema';
import { assertTaskPaths } from '../engine/model/taskFactory';
import type { TaskEdit } from '../engine/model/stateRecords';
import { withPipeline } from './openPipeline';
import { println, splitList } from './output';

/**
 * `pipeline task edit <id>` and `pipeline task remove <id>`: changing a task after it was added.
 *
 * An edit replaces each field it names (`--paths ''` clears the paths); prerequisites are checked
 * as when a task is added (they must exist and must not form a cycle) and the scheduler follows at
 * once. A removal is for work that has not started (no agent has worked on it); a task others wait
 * for is removed only with `--force`, which takes it out of their prerequisites too. Started work is
 * cancelled instead (`pipeline task cancel`), which keeps its branch and history.
 */

interface EditOptions {
  title?: string;
  description?: string;
  descriptionFile?: string;
  priority?: string;
  paths?: string;
  labels?: string;
  dependsOn?: string;
}

function parsePriority(v: string): Priority {
  if (!(PRIORITIES as readonly string[]).includes(v)) {
    throw new PipelineError('usage', `Unknown priority ${JSON.stringify(v)}.`, {
      where: '--priority',
      fix: `Use one of ${PRIORITIES.join(', ')}.`,
    });
  }
  return v as Priority;
}

async function changesOf(o: EditOptions): Promise<TaskEdit> {
  if (o.description !== undefined && o.descriptionFile !== undefined)
    throw new PipelineError('usage', 'Give --description or --description-file, not both.', {
      where: '--description-file',
    });
  const changes: TaskEdit = {};
  if (o.title !== undefined) changes.title = o.title;
  if (o.description !== undefined) changes.description = o.description;
  if (o.descriptionFile !== undefined) changes.description = await readDescription(o.descriptionFile);
  if (o.priority !== undefined) changes.priority = parsePriority(o.priority);
  if (o.paths !== undefined) {
    changes.paths = splitList(o.paths);
    assertTaskPaths(changes.paths, '--paths', 'usage');
  }
  if (o.labels !== undefined) changes.labels = splitList(o.labels);
  if (o.dependsOn !== undefined)
    changes.prerequisites = splitList(o.dependsOn).map((id) => assertTaskId(id, '--depends-on'));
  return changes;
}

async function readDescription(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PipelineError(
      'usage',
      `Cannot read the description file: ${code === 'ENOENT' ? 'there is no such file' : (e as Error).message}.`,
      {
        file,
        where: '--description-file',
        fix: 'Give the path of a readable text file, or the text itself with --description.',
      },
    );
  }
}

function describeChange(field: string, value: unknown): string {
  if (Array.isArray(value)) return `${field} ${value.length ? value.join(', ') : '(none)'}`;
  if (field === 'description') return 'description';
  return `${field} ${JSON.stringify(value)}`;
}

export function registerTaskEditing(task: Command): void {
  task
    .command('edit <id>')
    .description("change a task's title, description, priority, paths, labels or prerequisites")
    .option('--title <title>', 'a new title')
    .option('--description <markdown>', 'a new description')
    .option('--description-file <file>', 'read the new description from a file')
    .option('--priority <priority>', `one of ${PRIORITIES.join(', ')}`)
    .option('--paths <globs>', "the paths it is expected to touch, comma-separated (replaces them; '' clears)")
    .option('--labels <labels>', "its labels, comma-separated (replaces them; '' clears)")
    .option('--depends-on <ids>', "its prerequisites, comma-separated (replaces them; '' clears)")
    .action(async (id: string, o: EditOptions) => {
      assertTaskId(id);
      const changes = await changesOf(o);
      if (Object.keys(changes).length === 0)
        throw new PipelineError('usage', `Nothing to change in ${id}.`, {
          fix: 'Give at least one of --title, --description, --priority, --paths, --labels, --depends-on.',
        });
      await withPipeline('auto', 'pipeline task edit', async (p) => {
        const t = await p.editTask(id, changes);
        // As stored: prerequisites without duplicates, a title trimmed.
        const said = Object.keys(changes).map((k) => describeChange(k, t[k as keyof TaskEdit]));
        println(`Edited ${t.id}: ${said.join('; ')}.`);
      });
    });

  task
    .command('remove <id>')
    .description('remove a task no agent has worked on yet (started work: use cancel)')
    .option('--force', 'also take it out of the prerequisites of the tasks that wait for it')
    .action(async (id: string, o: { force?: boolean }) => {
      assertTaskId(id);
      await withPipeline('auto', 'pipeline task remove', async (p) => {
        const r = await p.removeTask(id, o.force ?? false);
        println(`Removed ${r.task.id}: ${r.task.title}`);
        if (r.released.length)
          println(
            `${r.released.join(', ')} no longer ${r.released.length === 1 ? 'waits' : 'wait'} for it (taken out of ${r.released.length === 1 ? 'its' : 'their'} prerequisites).`,
          );
      });
    });
}
