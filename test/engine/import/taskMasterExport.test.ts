import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportTaskMaster, splitDescription, type ExportTask } from '../../../src/engine/import/taskMasterExport';
import { detectAndParse } from '../../../src/engine/import/taskImport';
import type { ImportOptions, ImportResult } from '../../../src/engine/import/importTypes';
import { generateTaskMasterJson } from './generateTaskMaster';
import { fixtureText, warningMatching } from './importTestKit';

/**
 * The Task Master export: the shape current Task Master writes, and the round trip — a Task Master
 * file imported, exported and imported again gives the same tasks.
 */

/** The imported tasks as the pipeline holds them after `task import` (creation order = import order). */
function asPipelineTasks(r: ImportResult): ExportTask[] {
  return r.tasks.map((t, seq) => ({
    id: t.spec.id,
    title: t.spec.title,
    description: t.spec.description,
    prerequisites: t.spec.prerequisites,
    priority: t.spec.priority,
    status: t.status === 'pending' ? 'pending' : t.status,
    blocked_reason: t.reason ?? null,
    paths: t.spec.paths,
    labels: t.spec.labels,
    seq,
  }));
}

/** What a task is, without where in the file it came from. */
function essence(r: ImportResult): Map<string, unknown> {
  return new Map(
    r.tasks.map((t) => [t.spec.id, { spec: t.spec, status: t.status, reason: t.reason ?? null }] as const),
  );
}

function roundTrip(text: string, opts: ImportOptions = {}): { first: ImportResult; second: ImportResult } {
  const first = detectAndParse(text, 'tasks.json', opts);
  const exported = exportTaskMaster(asPipelineTasks(first), {
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
    ...(first.tag ? { tag: first.tag } : {}),
  });
  const second = detectAndParse(JSON.stringify(exported.file, null, 2), 'exported.json', opts);
  return { first, second };
}

void test('round trip: the fixtures and a large generated file import, export and import to the same tasks', async () => {
  const cases: Array<[string, string, ImportOptions]> = [
    ['tagged, master', await fixtureText('taskmaster-tagged.json'), {}],
    [
      'tagged, another tag and prefix',
      await fixtureText('taskmaster-tagged.json'),
      { tag: 'feature-oauth', prefix: 'FX' },
    ],
    ['legacy', await fixtureText('taskmaster-legacy.json'), {}],
    ['real world', await fixtureText('taskmaster-real-world.json'), {}],
    ['generated', generateTaskMasterJson({ tasks: 300, seed: 5 }), {}],
    ['generated, string ids', generateTaskMasterJson({ tasks: 120, seed: 8, stringIds: true }), {}],
  ];
  for (const [name, text, opts] of cases) {
    const { first, second } = roundTrip(text, opts);
    assert.ok(first.tasks.length > 0, name);
    assert.deepEqual(essence(second), essence(first), name);
    assert.equal(second.format, 'taskmaster-tagged', name);
    // The second import has nothing left to mend: no renumbering, no cycle, no sibling guessing.
    assert.equal(
      second.warnings.filter((w) => /share an id|cycles|themselves|own parent/.test(w)).length,
      0,
      `${name}: ${second.warnings.join('\n')}`,
    );
  }
});

void test('the export has the shape current Task Master writes', async () => {
  const first = detectAndParse(await fixtureText('taskmaster-real-world.json'), 'tasks.json');
  const now = new Date('2026-01-02T03:04:05.000Z');
  const out = exportTaskMaster(asPipelineTasks(first), { now });
  assert.deepEqual(Object.keys(out.file), ['master']);
  const tag = out.file.master!;
  assert.deepEqual(tag.metadata, {
    version: '1.0.0',
    lastModified: '2026-01-02T03:04:05.000Z',
    taskCount: 5,
    completedCount: 2,
    tags: ['master'],
  });
  assert.deepEqual(
    tag.tasks.map((t) => t.id),
    ['1', '2', '3', '4', '5'],
  );
  const t3 = tag.tasks[2]!;
  assert.deepEqual(t3, {
    id: '3',
    title: 'Billing integration',
    description: 'Charge customers through the payment provider.',
    details: '',
    testStrategy: '',
    // In progress in Task Master, pending after the import: the pipeline starts it afresh.
    status: 'pending',
    priority: 'medium',
    // Its subtasks are not its dependencies in Task Master; they are in the pipeline.
    dependencies: ['2'],
    subtasks: [
      {
        id: 1,
        title: 'Customer records at the provider',
        description: 'Create a provider customer on sign-up.',
        details: '',
        testStrategy: '',
        status: 'done',
        priority: 'medium',
        // Task 2 is inherited from the parent: left out.
        dependencies: [],
        parentId: '3',
      },
      {
        id: 2,
        title: 'Checkout session endpoint',
        description: 'POST /billing/checkout.',
        details: '',
        testStrategy: '',
        status: 'pending',
        priority: 'medium',
        dependencies: [1],
        parentId: '3',
      },
      {
        id: 3,
        title: 'Webhook handler',
        description: 'Verify signatures; mark invoices paid.',
        details: '',
        testStrategy: '',
        status: 'pending',
        priority: 'medium',
        dependencies: [1],
        parentId: '3',
      },
    ],
  });
  // A dependency on another task's subtask is written with a dot; a task's own, as strings.
  assert.deepEqual(tag.tasks[3]!.dependencies, ['3', '3.1']);
  assert.equal(tag.tasks[0]!.details, 'Shared tsconfig, ESLint and Prettier at the root.');
  assert.equal(tag.tasks[0]!.testStrategy, 'pnpm -r build succeeds on a fresh clone.');
  assert.deepEqual(out.warnings, []);
  assert.equal(out.tasks, 5);
  assert.equal(out.subtasks, 12);
});

void test('pipeline tasks: other ids numbered after the Task Master ones, statuses mapped, a description Task Master accepts', () => {
  const base = { description: '', priority: 'medium' as const, blocked_reason: null, paths: [], labels: [] };
  const tasks: ExportTask[] = [
    { ...base, id: 'TM-2', title: 'Imported', prerequisites: [], status: 'done', seq: 0 },
    { ...base, id: 'TASK-001', title: 'Native', prerequisites: ['TM-2'], status: 'working', seq: 1 },
    { ...base, id: 'TASK-002', title: 'Merging', prerequisites: ['TASK-001'], status: 'merging', seq: 2 },
    {
      ...base,
      id: 'TM-7',
      title: 'Deferred',
      prerequisites: [],
      status: 'blocked',
      blocked_reason: 'Imported from Task Master with status "deferred".',
      seq: 3,
    },
    {
      ...base,
      id: 'TM-7.1',
      title: 'Held by parent',
      prerequisites: [],
      status: 'blocked',
      blocked_reason: 'Its parent TM-7 was imported from Task Master with status "deferred".',
      seq: 4,
    },
    {
      ...base,
      id: 'TASK-003',
      title: 'Stuck',
      prerequisites: [],
      status: 'blocked',
      blocked_reason: 'implementation failed 3 times',
      paths: ['src/**'],
      priority: 'critical',
      seq: 5,
    },
    { ...base, id: 'TM-9.1', title: 'Orphan subtask', prerequisites: [], status: 'queued', seq: 6 },
  ];
  const out = exportTaskMaster(tasks, { tag: 'pipeline' });
  const list = out.file.pipeline!.tasks;
  assert.deepEqual(
    list.map((t) => `${t.id}:${t.status}:${t.priority}:${t.dependencies.join('+')}:${t.description}`),
    [
      '2:done:medium::Imported',
      '7:deferred:medium::Deferred',
      '8:in-progress:medium:2:Native',
      '9:review:medium:8:Merging',
      '10:blocked:critical::Stuck',
      '11:pending:medium::Orphan subtask',
    ],
  );
  assert.deepEqual(
    list[1]!.subtasks.map((s) => `${s.id}:${s.status}`),
    ['1:pending'],
  );
  assert.match(
    warningMatching({ warnings: out.warnings } as ImportResult, /without a Task Master number/),
    /\(4\): TASK-001 → 8, TASK-002 → 9, TASK-003 → 10, TM-9\.1 → 11\.$/,
  );
  assert.ok(
    out.warnings.includes(
      "1 task(s) have paths or labels, which Task Master's format has no place for; they were left out.",
    ),
  );
  warningMatching({ warnings: out.warnings } as ImportResult, /in-progress \(1\): TASK-001/);
  warningMatching({ warnings: out.warnings } as ImportResult, /review \(1\): TASK-002/);

  // Imported back: the statuses the pipeline can hold come back as they were.
  const back = detectAndParse(JSON.stringify(out.file), 'back.json', { tag: 'pipeline' });
  const status = new Map(back.tasks.map((t) => [t.spec.id, `${t.status}:${t.reason ?? ''}`]));
  assert.equal(status.get('TM-7'), 'blocked:Imported from Task Master with status "deferred".');
  assert.equal(status.get('TM-7.1'), 'blocked:Its parent TM-7 was imported from Task Master with status "deferred".');
  assert.equal(status.get('TM-2'), 'done:');
  // A description that only repeats the title (written so because Task Master needs one) is none.
  assert.equal(back.tasks.find((t) => t.spec.id === 'TM-2')?.spec.description, '');
});

void test('a subtask that depends on a task whose number a sibling has cannot be written; a warning says so', () => {
  const base = { description: 'x', priority: 'medium' as const, blocked_reason: null, paths: [], labels: [] };
  const out = exportTaskMaster([
    { ...base, id: 'TM-1', title: 'One', prerequisites: [], status: 'pending', seq: 0 },
    { ...base, id: 'TM-2', title: 'Two', prerequisites: ['TM-2.1'], status: 'pending', seq: 1 },
    { ...base, id: 'TM-2.1', title: 'Sub', prerequisites: ['TM-1'], status: 'pending', seq: 2 },
    { ...base, id: 'TM-3', title: 'Three', prerequisites: ['TM-3.1', 'TM-3.2'], status: 'pending', seq: 3 },
    { ...base, id: 'TM-3.1', title: 'Sub one', prerequisites: ['TM-1'], status: 'pending', seq: 4 },
    { ...base, id: 'TM-3.2', title: 'Sub two', prerequisites: ['TM-2', 'TM-2.1', 'TM-3.1'], status: 'pending', seq: 5 },
  ]);
  const tasks = out.file.master!.tasks;
  // Task 1 from subtask 2.1 (or 3.1): "1" there names subtask 1 of the same task, so it is left out.
  assert.deepEqual(tasks[1]!.subtasks[0]!.dependencies, []);
  assert.deepEqual(tasks[2]!.subtasks[0]!.dependencies, []);
  // From subtask 3.2: "2.1" names the other task's subtask, 1 its sibling; task 2 cannot be named.
  assert.deepEqual(tasks[2]!.subtasks[1]!.dependencies, ['2.1', 1]);
  assert.match(
    warningMatching({ warnings: out.warnings } as ImportResult, /cannot express/),
    /\(3\): TM-2\.1 → TM-1, TM-3\.1 → TM-1, TM-3\.2 → TM-2\.$/,
  );
});

void test('splitDescription takes apart what the import joins', () => {
  assert.deepEqual(splitDescription('Do it.\n\n## Details\n\nLike so.\n\n## Test strategy\n\nCheck.', 'task'), {
    description: 'Do it.',
    details: 'Like so.',
    testStrategy: 'Check.',
  });
  assert.deepEqual(splitDescription('## Test strategy\n\nCheck.\n\n## Parent task\n\nTM-1: One', 'subtask'), {
    description: '',
    details: '',
    testStrategy: 'Check.',
  });
  assert.deepEqual(
    splitDescription(
      'Top.\n\n## Subtasks\n\nThis task comes after its subtasks:\n\n- TM-1.1: a\n- TM-1.2: b',
      'parent',
    ),
    { description: 'Top.', details: '', testStrategy: '' },
  );
  // Only the sections the import writes, where it writes them: the same words elsewhere stay.
  assert.deepEqual(splitDescription('See ## Parent task\n\nTM-1: One', 'task'), {
    description: 'See ## Parent task\n\nTM-1: One',
    details: '',
    testStrategy: '',
  });
});
