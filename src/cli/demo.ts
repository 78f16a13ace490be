import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { initRepo } from '../engine/git/initRepo';
import { isAncestor } from '../engine/git/branches';
import { GitRepo } from '../engine/git/gitRepo';
import { Pipeline } from '../engine/pipeline';
import { initHome } from '../engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../engine/model/configSchema';
import { type TaskSpec } from '../engine/model/schema';
import { println } from './output';
import { runMonitor } from './runCommand';

/**
 * `pipeline demo` (the README's first command, `npm run demo`): a sample repository, scripted agents
 * for every role (two implementers), seven tasks with prerequisites, a failure that is retried, a
 * review that requests changes, and two tasks that touch the same file. It runs in parallel mode
 * and ends with every task merged on `main`.
 */
const SAMPLE_FILES: Record<string, string> = {
  'README.md': '# Sample project\n\nA small Node.js project that the Agent Pipeline demo builds, one task at a time.\n',
  'package.json':
    JSON.stringify(
      { name: 'sample-project', version: '0.0.0', private: true, scripts: { test: 'node --test' } },
      null,
      2,
    ) + '\n',
  'CHANGELOG.md': '# Changelog\n',
  'src/index.js': "exports.name = 'sample-project';\n",
};

export const DEMO_TASKS: TaskSpec[] = [
  {
    id: 'TASK-001',
    title: 'Core module layout',
    paths: ['src/core/**'],
    priority: 'high',
    description: 'Lay out the core module that the other features build on.',
  },
  {
    id: 'TASK-002',
    title: 'Input parser',
    prerequisites: ['TASK-001'],
    paths: ['src/parser/**', 'CHANGELOG.md'],
    description: 'Parse the input format.\n\nscripted: touch CHANGELOG.md',
  },
  {
    id: 'TASK-003',
    title: 'Output formatter',
    prerequisites: ['TASK-001'],
    paths: ['src/format/**'],
    description: 'Format results for the terminal.\n\nscripted: fail implementation 1',
  },
  {
    id: 'TASK-004',
    title: 'Configuration loader',
    prerequisites: ['TASK-001'],
    paths: ['src/config/**'],
    priority: 'low',
    description: 'Load settings from a file.',
  },
  {
    id: 'TASK-005',
    title: 'User guide',
    prerequisites: ['TASK-001'],
    paths: ['docs/**'],
    description: 'Write the user guide.\n\nscripted: request-changes 1',
  },
  {
    id: 'TASK-006',
    title: 'Command-line entry point',
    prerequisites: ['TASK-002', 'TASK-003'],
    paths: ['src/cli/**', 'CHANGELOG.md'],
    priority: 'high',
    description: 'Wire parser and formatter into a command.\n\nscripted: touch CHANGELOG.md',
  },
  {
    id: 'TASK-007',
    title: 'Release notes',
    prerequisites: ['TASK-004', 'TASK-005', 'TASK-006'],
    paths: ['CHANGELOG.md'],
    description: 'Summarise the release.\n\nscripted: touch CHANGELOG.md',
  },
];

export async function setUpDemo(dir: string): Promise<void> {
  await initRepo(dir, { files: SAMPLE_FILES });
  await initHome(dir, {
    targetBranch: 'main',
    stages: DEFAULT_STAGES,
    retry: { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, jitter: 0.2 },
  });
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'pipeline demo' });
  try {
    for (const [id, role] of [
      ['architect', 'architect'],
      ['tester', 'tester'],
      ['implementer-1', 'implementer'],
      ['implementer-2', 'implementer'],
      ['supervisor', 'supervisor'],
    ] as const) {
      await p.addAgent({ id, role, command: 'scripted' });
    }
    await p.addTasks(DEMO_TASKS.map((spec) => ({ spec, source: 'demo' })));
    await p.setOrchestrationMode('parallel');
    await p.setRolloutMode('production');
  } finally {
    await p.close();
  }
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a demo pipeline: scripted agents on a sample repository, seven tasks, parallel mode')
    .option('--dir <dir>', 'where to create the sample repository (default: a new temporary directory)')
    .option('--json', 'print events as JSON lines')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const dir = o.dir ? resolve(o.dir) : await mkdtemp(join(tmpdir(), 'agent-pipeline-demo-'));
      const json = o.json ?? false;
      if (!json) println(`Sample repository: ${dir}`);
      await setUpDemo(dir);
      if (!json)
        println(`${DEMO_TASKS.length} tasks, 5 scripted agents (architect, tester, 2 implementers, supervisor).\n`);
      const code = await runMonitor('process', true, json, dir);
      const p = await Pipeline.open({ cwd: dir, role: 'follow' });
      try {
        const tasks = Object.values(p.state.tasks);
        const r = await GitRepo.open(dir);
        let merged = 0;
        for (const t of tasks)
          if (t.status === 'done' && t.merged_commit && (await isAncestor(r, t.merged_commit, 'main'))) merged++;
        if (!json) {
          println(`\n${merged} of ${tasks.length} tasks merged on main. History of main:`);
          println(await r.read(['log', '--oneline', '--graph', '-n', '40', 'main']));
          println(`Inspect it: cd ${dir} && git log --graph main && node ${process.argv[1] ?? 'dist/cli.js'} status`);
        }
        process.exitCode = code === 0 && merged === tasks.length ? 0 : 1;
      } finally {
        await p.close();
      }
    });
}
