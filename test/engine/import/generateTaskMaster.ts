import { mulberry32 } from '../../support/prng';

export { mulberry32 };

/**
 * Generates a large, realistic Task Master tasks.json in the tagged format (v0.17+), for the import
 * benchmark and for tests: N tasks in `master`, most with subtasks, about three dependencies per
 * task, a spread of statuses and priorities, and a small second tag. The same options and seed give
 * the same file, byte for byte.
 *
 * The dependency graph is acyclic even after the import's own edges are added (a parent after its
 * subtasks, subtasks inheriting the parent's prerequisites): every dependency points to a task with
 * a smaller number, to a subtask of such a task, or to an earlier sibling.
 */

export interface GenerateTaskMasterOptions {
  /** Tasks in the `master` tag. */
  tasks: number;
  /** PRNG seed; the default is 1. */
  seed?: number;
  /** Average dependencies per top-level task (fewer for the first tasks, which have fewer to pick from). */
  dependenciesPerTask?: number;
  /** Subtasks per task are drawn from 0..maxSubtasks (a quarter of the tasks have none). */
  maxSubtasks?: number;
  /** Extra tags besides `master`, each with `extraTagTasks` tasks. */
  extraTags?: string[];
  extraTagTasks?: number;
  /** Write ids and dependencies as strings ("12"), as tm-core does, instead of numbers as the scripts do. */
  stringIds?: boolean;
}

export interface TaskMasterSubtask {
  id: number;
  title: string;
  description: string;
  details: string;
  status: string;
  dependencies: Array<number | string>;
  testStrategy: string;
  priority?: string;
}

export interface TaskMasterTask {
  id: number | string;
  title: string;
  description: string;
  details: string;
  testStrategy: string;
  status: string;
  dependencies: Array<number | string>;
  priority?: string;
  subtasks: TaskMasterSubtask[];
}

export interface TaskMasterTag {
  tasks: TaskMasterTask[];
  metadata: { created: string; updated: string; description: string };
}

export type TaskMasterTaggedFile = Record<string, TaskMasterTag>;

const VERBS = ['Implement', 'Add', 'Design', 'Refactor', 'Document', 'Test', 'Migrate', 'Optimise', 'Harden', 'Set up'];
const OBJECTS = [
  'user authentication',
  'session storage',
  'the billing webhook handler',
  'the search index',
  'rate limiting',
  'the notification service',
  'CSV export',
  'audit logging',
  'the settings page',
  'database migrations',
  'the public REST API',
  'feature flags',
  'image uploads',
  'the onboarding flow',
  'background job retries',
  'the metrics dashboard',
];
const QUALIFIERS = [
  '',
  ' for teams',
  ' with pagination',
  ' behind a feature flag',
  ' for mobile clients',
  ' in the admin area',
  ' with caching',
];
const DETAILS = [
  'Keep the public interface backwards compatible and document every new option.',
  'Validate all input at the boundary and return errors that say what to change.',
  "Store timestamps in UTC and render them in the user's time zone.",
  'Reuse the existing repository layer instead of writing new queries.',
  'Log one structured line per request with the correlation id.',
  'Guard the change with a feature flag so that it can be turned off without a deploy.',
  'Measure the latency before and after; the p95 must not grow by more than 10 %.',
];
const STRATEGIES = [
  'Unit tests for the edge cases and one integration test against a disposable database.',
  'Playwright test of the happy path; manual check on a small screen.',
  'Property-based tests for the parser; fixtures for the known bad inputs.',
  'Load test with 200 concurrent users; no errors and p95 under 300 ms.',
];

export function generateTaskMasterFile(opts: GenerateTaskMasterOptions): TaskMasterTaggedFile {
  const rnd = mulberry32(opts.seed ?? 1);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const weighted = <T extends string>(table: ReadonlyArray<readonly [T, number]>): T => {
    let r = rnd() * table.reduce((s, [, w]) => s + w, 0);
    for (const [v, w] of table) {
      r -= w;
      if (r < 0) return v;
    }
    return (table[table.length - 1] as readonly [T, number])[0];
  };
  const idOf = (n: number): number | string => (opts.stringIds ? String(n) : n);
  const avgDeps = opts.dependenciesPerTask ?? 3;
  const maxSubtasks = opts.maxSubtasks ?? 5;
  const base = Date.UTC(2025, 5, 1);
  const day = 24 * 3600 * 1000;

  const title = (): string => `${pick(VERBS)} ${pick(OBJECTS)}${pick(QUALIFIERS)}`;
  const details = (): string => Array.from({ length: 2 + int(3) }, () => pick(DETAILS)).join(' ');
  const status = (progress: number): string =>
    // Earlier tasks are more often finished, as in a project that has been running for a while.
    weighted([
      ['done', 5 + 60 * (1 - progress)],
      ['pending', 15 + 50 * progress],
      ['in-progress', 8],
      ['review', 4],
      ['deferred', 4],
      ['blocked', 3],
      ['cancelled', 2],
    ] as const);
  const priority = (): string | undefined =>
    weighted([
      ['high', 25],
      ['medium', 50],
      ['low', 20],
      ['none', 5],
    ] as const).replace('none', '') || undefined;

  const makeTasks = (count: number, withSubtasks: boolean): TaskMasterTask[] => {
    const subtaskCounts: number[] = [];
    const tasks: TaskMasterTask[] = [];
    for (let n = 1; n <= count; n++) {
      const wanted = Math.max(0, Math.round(avgDeps + (rnd() - 0.5) * 2));
      const deps = new Set<string>();
      const depList: Array<number | string> = [];
      for (let tries = 0; deps.size < Math.min(wanted, n - 1) && tries < 20; tries++) {
        // Mostly recent tasks (work builds on what was just done), sometimes anything earlier.
        const target = rnd() < 0.7 ? Math.max(1, n - 1 - int(20)) : 1 + int(n - 1);
        const subs = subtaskCounts[target - 1] ?? 0;
        const key = subs > 0 && rnd() < 0.1 ? `${target}.${1 + int(subs)}` : String(target);
        if (deps.has(key)) continue;
        deps.add(key);
        depList.push(key.includes('.') ? key : idOf(target));
      }
      const subtasks: TaskMasterSubtask[] = [];
      const subCount = withSubtasks && rnd() >= 0.25 ? 1 + int(maxSubtasks) : 0;
      const progress = n / count;
      const taskStatus = status(progress);
      for (let s = 1; s <= subCount; s++) {
        const sdeps: Array<number | string> = [];
        if (s > 1 && rnd() < 0.6) sdeps.push(s - 1);
        if (s > 2 && rnd() < 0.2) sdeps.push(1 + int(s - 2));
        const earlier = n > 1 ? 1 + int(n - 1) : 0;
        const earlierSubs = earlier ? (subtaskCounts[earlier - 1] ?? 0) : 0;
        if (earlierSubs > 0 && rnd() < 0.05) sdeps.push(`${earlier}.${1 + int(earlierSubs)}`);
        subtasks.push({
          id: s,
          title: title(),
          description: `Part ${s} of task ${n}.`,
          details: rnd() < 0.5 ? details() : '',
          status:
            taskStatus === 'done'
              ? 'done'
              : weighted([
                  ['pending', 70],
                  ['done', 20],
                  ['in-progress', 10],
                ] as const),
          dependencies: [...new Set(sdeps)],
          testStrategy: rnd() < 0.3 ? pick(STRATEGIES) : '',
        });
      }
      subtaskCounts.push(subCount);
      const p = priority();
      tasks.push({
        id: idOf(n),
        title: title(),
        description: `${pick(VERBS)} ${pick(OBJECTS)} so that the release can ship.`,
        details: details(),
        testStrategy: pick(STRATEGIES),
        status: taskStatus,
        dependencies: depList,
        ...(p ? { priority: p } : {}),
        subtasks,
      });
    }
    return tasks;
  };

  const metadata = (description: string, offsetDays: number) => ({
    created: new Date(base + offsetDays * day).toISOString(),
    updated: new Date(base + (offsetDays + 30) * day).toISOString(),
    description,
  });
  const file: TaskMasterTaggedFile = {
    master: { tasks: makeTasks(opts.tasks, true), metadata: metadata('Tasks for master context', 0) },
  };
  (opts.extraTags ?? ['feature-x']).forEach((tag, k) => {
    file[tag] = {
      tasks: makeTasks(opts.extraTagTasks ?? 10, true),
      metadata: metadata(`Tasks for ${tag} context`, 10 + k),
    };
  });
  return file;
}

/** The file as Task Master writes it: JSON with two-space indentation. */
export function generateTaskMasterJson(opts: GenerateTaskMasterOptions): string {
  return `${JSON.stringify(generateTaskMasterFile(opts), null, 2)}\n`;
}
