import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../engine/store/fsUtil';
import { PipelineError } from '../engine/errors';
import { exportTaskMaster, mergeIntoTasksFile } from '../engine/import/taskMasterExport';
import { withPipeline } from './openPipeline';
import { println } from './output';

/**
 * `pipeline task export --format taskmaster|seed [--tag] [--prefix] [--output]`: the pipeline's
 * tasks as a Task Master tasks.json (docs/task-import.md, "Export") or as the seed's state JSON (what
 * `pipeline status --json` prints). To stdout by default, so the JSON can be piped; with `--output`,
 * written whole (temp file and rename), and a summary is printed instead.
 */

const FORMATS = ['taskmaster', 'seed'] as const;
type Format = (typeof FORMATS)[number];

interface ExportOptions {
  format: string;
  tag?: string;
  prefix?: string;
  output?: string;
}

export function registerTaskExport(task: Command): void {
  task
    .command('export')
    .description("export the tasks as a Task Master tasks.json or the seed's state JSON")
    .option('--format <format>', `${FORMATS.join(' or ')}`, 'taskmaster')
    .option('--tag <tag>', 'the Task Master tag to write the tasks under (default: master)')
    .option('--prefix <prefix>', 'the id prefix that carries Task Master numbers (default TM: TM-12 is task 12)')
    .option('--output <file>', 'write to this file instead of stdout (other tags in a Task Master file are kept)')
    .action(async (o: ExportOptions) => {
      const format = parseFormat(o.format);
      if (format === 'seed' && (o.tag !== undefined || o.prefix !== undefined)) {
        throw new PipelineError('usage', '--tag and --prefix apply to --format taskmaster only.', {
          where: o.tag !== undefined ? '--tag' : '--prefix',
          fix: 'Leave them out for --format seed.',
        });
      }
      const made = await withPipeline('follow', 'pipeline task export', (p) =>
        format === 'seed'
          ? { seed: p.status() }
          : {
              taskmaster: exportTaskMaster(Object.values(p.state.tasks), {
                ...(o.tag !== undefined ? { tag: o.tag } : {}),
                ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
              }),
            },
      );
      const tm = 'taskmaster' in made ? made.taskmaster : null;
      for (const w of tm?.warnings ?? []) process.stderr.write(`pipeline: warning: ${w}\n`);
      const json: unknown = 'seed' in made ? made.seed : tm?.file;

      if (o.output === undefined) {
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        return;
      }
      const file = resolve(o.output);
      let content = json;
      let kept: string[] = [];
      if (tm) ({ content, kept } = mergeIntoTasksFile(await readIfExists(file), tm, o.output));
      try {
        await writeFileAtomic(file, `${JSON.stringify(content, null, 2)}\n`);
      } catch (err) {
        throw new PipelineError(
          'usage',
          `${o.output} cannot be written: ${err instanceof Error ? err.message : String(err)}.`,
          {
            file: o.output,
            where: '(file)',
            fix: 'Check that its folder exists and can be written, or choose another --output.',
          },
        );
      }
      const what = tm
        ? `${tm.tasks} task(s) and ${tm.subtasks} subtask(s) under tag "${tm.tag}"`
        : 'the pipeline state';
      println(`Exported ${what} to ${o.output}${kept.length ? ` (its other tags kept: ${kept.join(', ')})` : ''}.`);
    });
}

function parseFormat(v: string): Format {
  if ((FORMATS as readonly string[]).includes(v)) return v as Format;
  throw new PipelineError('usage', `Unknown export format ${JSON.stringify(v)}.`, {
    where: '--format',
    fix: `Use ${FORMATS.join(' or ')}.`,
  });
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return null;
    throw new PipelineError('usage', `${file} cannot be read: ${err instanceof Error ? err.message : String(err)}.`, {
      file,
      where: '(file)',
      fix: 'Choose another --output, or check that file.',
    });
  }
}
