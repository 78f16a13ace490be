import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateTaskMasterJson } from '../engine/import/generateTaskMaster';
import { FIXTURES, json, ok, requireCli, withRepo, type StatusJson } from './cliKit';

/**
 * `pipeline task export --format taskmaster` read by Task Master itself (npm task-master-ai, the
 * version the Task Master benchmark pins), offline: `validate-dependencies`, `list` and `next` are
 * local commands that need no API key. The file Task Master wrote in the wild (subtasks sharing an
 * id, a task depending on itself, a cycle among done subtasks) fails Task Master's own dependency
 * check; once imported and exported, it passes, and Task Master lists every task with the title and
 * status the pipeline has.
 *
 * Task Master is never a dependency of the project. It is looked for where the benchmark installs
 * it (bench/taskmaster.bench.ts: $TASK_MASTER_PREFIX, default <tmp>/tm-bench); without it the test
 * is skipped, saying how to install it.
 */

requireCli();

type TaskJson = StatusJson['tasks'][string];

const TASK_MASTER_VERSION = '0.43.1';
const PREFIX = process.env.TASK_MASTER_PREFIX ?? join(tmpdir(), 'tm-bench');
const BIN = join(PREFIX, 'node_modules', '.bin', 'task-master');
const engineFixture = (name: string) => join(FIXTURES, '..', '..', 'engine', 'import', 'fixtures', name);

const missing = existsSync(BIN)
  ? false
  : `Task Master is not installed at ${BIN}; install it with \`npm install --prefix ${PREFIX} task-master-ai@${TASK_MASTER_VERSION}\` (or run \`npm run bench -- taskmaster\`, which does).`;

interface Run {
  code: number | null;
  out: string;
}

/** Runs `task-master <args>` in `cwd`, colours off, and waits for it to exit (its start-up takes seconds). */
function taskMaster(cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn(BIN, args, {
      cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.once('error', reject);
    child.once('close', (code) => done({ code, out }));
  });
}

/** Task Master's `validate-dependencies` exits 0 either way; its verdict is in what it prints. */
async function dependenciesValid(cwd: string, file: string): Promise<{ valid: boolean; out: string }> {
  const r = await taskMaster(cwd, 'validate-dependencies', '-f', file);
  assert.equal(r.code, 0, r.out);
  const valid = /All Dependencies Are Valid/.test(r.out);
  assert.ok(valid || /Dependency Validation FAILED/.test(r.out), `a verdict:\n${r.out}`);
  return { valid, out: r.out };
}

interface TmTask {
  id: string | number;
  title: string;
  status: string;
  subtasks?: TmTask[];
}

/** `task-master list --with-subtasks --format json`: every task as "id title status", subtasks as "1.2". */
async function listed(project: string): Promise<string[]> {
  const r = await taskMaster(project, 'list', '--with-subtasks', '--format', 'json', '-p', project);
  assert.equal(r.code, 0, r.out);
  const start = r.out.indexOf('{\n');
  assert.ok(start >= 0, `JSON in:\n${r.out}`);
  const { tasks } = JSON.parse(r.out.slice(start)) as { tasks: TmTask[] };
  return tasks.flatMap((t) => [
    `${t.id} ${t.title} ${t.status}`,
    ...(t.subtasks ?? []).map((s) => `${t.id}.${s.id} ${s.title} ${s.status}`),
  ]);
}

/** The tasks of a Task Master file in the same form: "id title status", subtasks as "1.2". */
async function inFile(file: string): Promise<string[]> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as Record<string, { tasks: TmTask[] }>;
  return Object.values(parsed)[0]!.tasks.flatMap((t) => [
    `${t.id} ${t.title} ${t.status}`,
    ...(t.subtasks ?? []).map((s) => `${t.id}.${s.id} ${s.title} ${s.status}`),
  ]);
}

/** The pipeline's tasks as ids and titles in Task Master's form: TM-3.1 → "3.1 <title>". */
function idsAndTitles(tasks: TaskJson[]): string[] {
  return tasks.map((t) => `${t.id.replace(/^TM-/, '')} ${t.title}`).sort();
}

/** Task Master's view without statuses, to compare with the pipeline's. */
const withoutStatus = (lines: string[]) => lines.map((l) => l.slice(0, l.lastIndexOf(' '))).sort();

interface RawTask {
  id: number | string;
  dependencies?: (number | string)[];
  subtasks?: RawTask[];
}
type RawFile = Record<string, { tasks: RawTask[] }>;

/**
 * The dependencies in a Task Master file that name a subtask id shared by several subtasks of one
 * task, as Task Master looks them up ("3.3"), with the pipeline task that holds each: a subtask of
 * such a task is numbered by its position (TM-3.2 is the second), as the import numbers them.
 */
function sharedIdReferences(file: RawFile): { holder: string; ref: string }[] {
  const tasks = Object.values(file)[0]!.tasks;
  const shared = new Map<string, Set<string>>();
  for (const t of tasks) {
    const ids = (t.subtasks ?? []).map((x) => String(x.id));
    if (new Set(ids).size < ids.length) shared.set(String(t.id), new Set(ids));
  }
  const refs: { holder: string; ref: string }[] = [];
  for (const t of tasks) {
    for (const d of t.dependencies ?? []) {
      const [parent, sub] = String(d).split('.');
      if (sub !== undefined && shared.has(parent!)) refs.push({ holder: `TM-${t.id}`, ref: String(d) });
    }
    const siblings = shared.get(String(t.id));
    if (!siblings) continue;
    (t.subtasks ?? []).forEach((x, i) => {
      for (const d of x.dependencies ?? [])
        if (siblings.has(String(d))) refs.push({ holder: `TM-${t.id}.${i + 1}`, ref: `${t.id}.${d}` });
    });
  }
  return refs;
}

/** Exports the pipeline in `dir` into a Task Master project of its own and returns that project. */
async function exportToProject(dir: string, project: string): Promise<string> {
  const file = join(project, '.taskmaster', 'tasks', 'tasks.json');
  await mkdir(join(project, '.taskmaster', 'tasks'), { recursive: true });
  await ok(dir, 'task', 'export', '--format', 'taskmaster', '--output', file);
  return file;
}

test(
  'Task Master reads the export of a file from the wild: dependencies on shared ids point where its lookup does; its dependency check passes where the original failed; list and next agree',
  { skip: missing },
  async () => {
    await withRepo({ init: true }, async ({ dir, base }) => {
      const original = engineFixture('taskmaster-real-world.json');
      // The control: Task Master itself finds the original's dependencies faulty (shared subtask ids).
      const wild = join(base, 'wild');
      await mkdir(join(wild, '.taskmaster', 'tasks'), { recursive: true });
      await copyFile(original, join(wild, '.taskmaster', 'tasks', 'tasks.json'));
      const before = await dependenciesValid(wild, join(wild, '.taskmaster', 'tasks', 'tasks.json'));
      assert.equal(before.valid, false, before.out);

      await ok(dir, 'task', 'import', original);
      // Where a dependency on a shared subtask id points: Task Master's own lookup (`show`) names the
      // task, and the pipeline's prerequisite is that task.
      const ours = await json<TaskJson[]>(dir, 'task', 'list', '--json');
      const refs = sharedIdReferences(JSON.parse(await readFile(original, 'utf8')) as RawFile);
      assert.ok(refs.length >= 4, `references to shared ids in the fixture (${refs.length})`);
      const shown = await taskMaster(wild, 'show', [...new Set(refs.map((r) => r.ref))].join(','), '--format', 'json');
      assert.equal(shown.code, 0, shown.out);
      const found = JSON.parse(shown.out.slice(shown.out.indexOf('{'))) as {
        tasks: { id: number | string; parentId?: string; title: string }[];
      };
      const titleOf = new Map(found.tasks.map((t) => [t.parentId ? `${t.parentId}.${t.id}` : String(t.id), t.title]));
      const titles = new Map(ours.map((t) => [t.id, t.title]));
      for (const { holder, ref } of refs) {
        const title = titleOf.get(ref);
        assert.ok(title, `Task Master finds ${ref}:\n${shown.out}`);
        const prerequisites = ours.find((t) => t.id === holder)!.prerequisites.map((id) => titles.get(id));
        assert.ok(
          prerequisites.includes(title),
          `${holder} depends on ${ref}, which Task Master reads as "${title}"; its prerequisites: ${prerequisites.join(', ')}`,
        );
      }

      const project = join(base, 'tm');
      const file = await exportToProject(dir, project);
      const after = await dependenciesValid(project, file);
      assert.equal(after.valid, true, after.out);

      // Task Master lists every task of the file with its status; they are the pipeline's tasks.
      const seen = await listed(project);
      assert.deepEqual([...seen].sort(), (await inFile(file)).sort());
      assert.deepEqual(withoutStatus(seen), idsAndTitles(ours));

      const next = await taskMaster(project, 'next', '--format', 'json', '-p', project);
      assert.equal(next.code, 0, next.out);
      const n = JSON.parse(next.out.slice(next.out.indexOf('{\n'))) as { found: boolean; task: { id: string } };
      assert.equal(n.found, true, next.out);
      // Task Master offers a task the pipeline has not finished either.
      const same = ours.find((t) => t.id === `TM-${n.task.id}`);
      assert.ok(same && same.status !== 'done' && same.status !== 'cancelled', `${n.task.id} in ${next.out}`);
    });
  },
);

test(
  'Task Master reads the export of a large generated file (string ids, every status): dependencies valid, every task listed',
  { skip: missing },
  async () => {
    await withRepo({ init: true }, async ({ dir, base }) => {
      const source = join(base, 'generated.json');
      await writeFile(source, generateTaskMasterJson({ tasks: 150, seed: 11, stringIds: true }));
      await ok(dir, 'task', 'import', source);
      const project = join(base, 'tm');
      const file = await exportToProject(dir, project);
      const after = await dependenciesValid(project, file);
      assert.equal(after.valid, true, after.out);
      const ours = await json<TaskJson[]>(dir, 'task', 'list', '--json');
      assert.ok(ours.length > 150, `subtasks too (${ours.length})`);
      const seen = await listed(project);
      assert.deepEqual([...seen].sort(), (await inFile(file)).sort());
      assert.deepEqual(withoutStatus(seen), idsAndTitles(ours));
      // Every status Task Master knows that the pipeline keeps apart comes back as Task Master wrote it.
      const statuses = new Set(seen.map((l) => l.slice(l.lastIndexOf(' ') + 1)));
      for (const s of ['done', 'pending', 'blocked', 'deferred', 'cancelled'])
        assert.ok(statuses.has(s), `${s} in ${[...statuses].join(', ')}`);
    });
  },
);
