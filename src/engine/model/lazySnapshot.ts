import { isAscii } from 'node:buffer';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PipelineError } from '../errors';
import type { SnapshotLines } from '../store/snapshotLines';
import { NAME_PATTERN, TASK_ID_PATTERN } from './ids';
import {
  describeZodError,
  PRIORITIES,
  stateSchema,
  STATE_SCHEMA_VERSION,
  TASK_STATUSES,
  taskSchema,
  type PipelineState,
  type Task,
} from './schema';

/**
 * The pipeline's own snapshot layout, read part by part: a command that only asks what to do next
 * on a 6 000-task state must not parse and validate 5 MB of task descriptions and histories.
 *
 * The body (after the store's header line, which checksums all of it) is lines of json:
 *
 *   1. the state without its tasks (modes, agents, decisions, counters);
 *   2. the index: one row per task, in the tasks' order, with the fields that scheduling, lists and
 *      views read (ROW_FIELDS below);
 *   3. then one line per task, the whole task as JSON.stringify writes it.
 *
 * Reading parses lines 1 and 2 only and checks every row field; each task is an object whose row
 * fields are plain values and whose other fields (description, history, timestamps, branch) are
 * read from its own line the first time anything asks for one of them. That line is then validated
 * against the task schema in full and must agree with the row, or reading it throws an error that
 * names the snapshot, the line and what to do. The checksum in the header has already proved that
 * the bytes are those the leader wrote.
 *
 * Writing reuses the bytes of every task line that is unchanged since it was read or written (tasks
 * are replaced on every change, never changed in place, so the same object means the same line),
 * which makes a snapshot's cost follow what changed rather than the whole state. Serialisation
 * yields to the event loop every few milliseconds, as sliceStringify does.
 */

export const LAZY_LAYOUT = 'pipeline-task-lines-1';

/** A task's fields in the schema's order, the order JSON.stringify writes them in. */
const TASK_KEYS = Object.keys(taskSchema.shape) as (keyof Task)[];

/** The fields kept in the index row, read at open. */
export const ROW_FIELDS = [
  'id',
  'title',
  'prerequisites',
  'priority',
  'paths',
  'labels',
  'status',
  'stage',
  'assigned_to',
  'attempt',
  'failures',
  'not_before',
  'blocked_reason',
  'seq',
  'merged_commit',
] as const satisfies readonly (keyof Task)[];

/** The fields read from the task's own line on first use: every field the row does not hold. */
export const LINE_FIELDS: readonly (keyof Task)[] = TASK_KEYS.filter(
  (k) => !(ROW_FIELDS as readonly string[]).includes(k),
);

const ROW_INDEX = new Map<string, number>(ROW_FIELDS.map((k, i) => [k, i]));
/**
 * After the row fields, whether the task has `usage` (an optional line field): a lazy task has
 * the field's getter only then, so it has the same keys as the plain task it stands for. Rows
 * written before usage existed lack the flag and read as false.
 */
const HAS_USAGE = ROW_FIELDS.length;

function hasUsage(t: Task): boolean {
  const d = Object.getOwnPropertyDescriptor(t, 'usage');
  return d !== undefined && (d.get !== undefined || d.value !== undefined);
}

type Row = unknown[];

/** Task lines: those of a snapshot file (read on demand, store/snapshotLines.ts) or of a body just written. */
interface TaskLines {
  /** The snapshot file, for error messages. */
  readonly file: string;
  /** Task line `i` (from 0), without its newline. */
  line(i: number): Buffer;
}

/** A body this process wrote, held until the next one replaces it. */
class BodyLines implements TaskLines {
  constructor(
    readonly file: string,
    private readonly body: Buffer,
    /** Line i spans starts[i] to starts[i + 1] - 1, where its newline is. */
    private readonly starts: Float64Array,
  ) {}

  line(i: number): Buffer {
    return this.body.subarray(this.starts[i], this.starts[i + 1]! - 1);
  }
}

/** Where a task's line is, for reading it on first use and for reusing its bytes in the next snapshot. */
interface LineRef {
  readonly lines: TaskLines;
  readonly index: number;
  /** The row written with this line: a task whose row differs was changed in place and is written afresh. */
  readonly row: Row;
}

/** The line's number in the snapshot file, for error messages: the header, the state and the index come first. */
const lineNumber = (ref: LineRef): number => ref.index + 4;

const lineOf = new WeakMap<object, LineRef>();

/** The lines the store reads whole: the state and the index. */
export const HEAD_LINES = 2;
const NL_BUF = Buffer.from('\n');
const SLICE_MS = 4;
// Time slices are measured with the global `performance`, which Node loads on first use (a read-only
// command, which writes no snapshot, never loads perf_hooks).

// ---------------------------------------------------------------------------------------------
// Reading.

/**
 * A line's text for JSON.parse. An ASCII line (the usual index line: ids, names, numbers, most
 * titles) is read as latin1, which Node hands to V8 as an external string when it is large (the index
 * of a 6 000-task state is 1.1 MB): it then neither takes a UTF-8 decoding pass nor sits on the
 * JavaScript heap until the next full collection.
 */
function textOf(bytes: Buffer): string {
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

function snapshotError(file: string, where: string, what: string): PipelineError {
  return new PipelineError('invalid-state', `${file} is not a valid pipeline state: ${what}.`, {
    file,
    where,
    fix: `Move ${file} aside (for example to ${file}.bad) and run the command again: the state is then recovered from the older snapshot and the journal.`,
  });
}

/** Reads the task's line, validates it, and turns its lazy fields into plain ones. */
function materialize(task: Record<string, unknown>): void {
  const ref = lineOf.get(task);
  if (!ref) throw new Error('a task read from a snapshot lost its line (this is a bug)');
  const line = lineNumber(ref);
  const file = ref.lines.file;
  const where = `line ${line} (task ${String(task.id)})`;
  const bytes = ref.lines.line(ref.index);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw snapshotError(file, where, `line ${line} is not json`);
  }
  const r = taskSchema.safeParse(json);
  if (!r.success) throw snapshotError(file, where, `task ${String(task.id)}: ${describeZodError(r.error)}`);
  const full = r.data as Record<string, unknown>;
  for (const k of ROW_FIELDS) {
    if (!sameValue(full[k], ref.row[ROW_INDEX.get(k)!]))
      throw snapshotError(file, where, `task ${String(task.id)}'s ${k} differs from its index row`);
  }
  if ((full.usage !== undefined) !== (ref.row[HAS_USAGE] === true))
    throw snapshotError(file, where, `task ${String(task.id)}'s usage differs from its index row`);
  for (const k of LINE_FIELDS) {
    // An optional field the line does not have is absent, as in a plain task.
    if (full[k] === undefined) delete task[k];
    else Object.defineProperty(task, k, { value: full[k], writable: true, enumerable: true, configurable: true });
  }
}

/** Getters for the fields read on first use; shared by every lazy task (they find the line by `this`). */
const LAZY_DESCRIPTORS: PropertyDescriptorMap = Object.fromEntries(
  LINE_FIELDS.map((k) => [
    k,
    {
      enumerable: true,
      configurable: true,
      get(this: Record<string, unknown>): unknown {
        materialize(this);
        return this[k];
      },
    },
  ]),
);

/**
 * A task whose row fields are plain values and whose line fields are getters. Written out field by
 * field in the schema's order, each getter added as a new property: so every lazy task shares one
 * hidden class and stays a fast object (redefining properties, or a loop over the keys, makes
 * V8 turn 6 000 objects into slow dictionaries, which costs more than the parsing saved). A test
 * holds the order to the schema's.
 */
function lazyTask(r: Row): Task {
  const t: Record<string, unknown> = { id: r[0], title: r[1] };
  Object.defineProperty(t, 'description', LAZY_DESCRIPTORS.description!);
  t.prerequisites = r[2];
  t.priority = r[3];
  t.paths = r[4];
  t.labels = r[5];
  t.status = r[6];
  t.stage = r[7];
  t.assigned_to = r[8];
  Object.defineProperty(t, 'branch', LAZY_DESCRIPTORS.branch!);
  t.attempt = r[9];
  t.failures = r[10];
  t.not_before = r[11];
  t.blocked_reason = r[12];
  Object.defineProperty(t, 'created_at', LAZY_DESCRIPTORS.created_at!);
  Object.defineProperty(t, 'updated_at', LAZY_DESCRIPTORS.updated_at!);
  t.seq = r[13];
  t.merged_commit = r[14];
  Object.defineProperty(t, 'history', LAZY_DESCRIPTORS.history!);
  if (r[HAS_USAGE] === true) Object.defineProperty(t, 'usage', LAZY_DESCRIPTORS.usage!);
  return t as unknown as Task;
}

/**
 * `task` with some of its row fields changed, for a what-if (a dry run): its details stay unread
 * when they are, since reading and validating them costs more than the rest of the question.
 */
export function taskWith(task: Task, changes: Partial<Pick<Task, (typeof ROW_FIELDS)[number]>>): Task {
  const ref = lineOf.get(task);
  const unread = ref !== undefined && typeof Object.getOwnPropertyDescriptor(task, LINE_FIELDS[0]!)?.get === 'function';
  if (!unread) return { ...task, ...changes };
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(task)) as Task;
  Object.assign(copy, changes);
  lineOf.set(copy, ref);
  return copy;
}

const STATUSES: ReadonlySet<unknown> = new Set(TASK_STATUSES);
const PRIORITY_SET: ReadonlySet<unknown> = new Set(PRIORITIES);

const isStr = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function isStrList(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
}

/**
 * Strings a pattern has already accepted in this snapshot, so that a task id met again (every
 * prerequisite is another task's id) or a stage name is matched once rather than at every row.
 */
export class KnownValid {
  readonly ids = new Set<string>();
  readonly names = new Set<string>();

  taskId(v: unknown): boolean {
    if (typeof v !== 'string') return false;
    if (this.ids.has(v)) return true;
    if (!TASK_ID_PATTERN.test(v)) return false;
    this.ids.add(v);
    return true;
  }

  name(v: unknown): boolean {
    if (typeof v !== 'string') return false;
    if (this.names.has(v)) return true;
    if (!NAME_PATTERN.test(v)) return false;
    this.names.add(v);
    return true;
  }
}

/**
 * What is wrong with a row, or undefined: the same rules the task schema gives these fields, in
 * plain code because checking 6 000 rows with the schema would cost more than everything else a
 * read-only command does (a test holds the two to the same verdicts). `known` carries what earlier
 * rows of the same snapshot proved.
 */
export function rowProblem(row: unknown, known: KnownValid = new KnownValid()): string | undefined {
  if (!Array.isArray(row) || (row.length !== ROW_FIELDS.length && row.length !== ROW_FIELDS.length + 1))
    return `not a row of ${ROW_FIELDS.length + 1} fields`;
  const r = row as unknown[];
  if (r.length > HAS_USAGE && typeof r[HAS_USAGE] !== 'boolean') return 'the usage flag is not true or false';
  if (!known.taskId(r[0])) return 'id is not a task id';
  if (!isStr(r[1])) return 'title is not a string';
  const prerequisites = r[2];
  if (!Array.isArray(prerequisites)) return 'prerequisites is not a list of task ids';
  for (let i = 0; i < prerequisites.length; i++)
    if (!known.taskId(prerequisites[i])) return 'prerequisites is not a list of task ids';
  if (!PRIORITY_SET.has(r[3])) return 'priority is not one of the priorities';
  if (!isStrList(r[4])) return 'paths is not a list of strings';
  if (!isStrList(r[5])) return 'labels is not a list of strings';
  if (!STATUSES.has(r[6])) return 'status is not one of the statuses';
  if (!known.name(r[7])) return 'stage is not a name';
  const assignedTo = r[8];
  if (assignedTo !== null && !known.name(assignedTo)) return 'assigned_to is neither null nor a name';
  if (!isCount(r[9])) return 'attempt is not a whole number';
  if (!isCount(r[10])) return 'failures is not a whole number';
  const notBefore = r[11];
  if (notBefore !== null && (!isStr(notBefore) || notBefore.length === 0))
    return 'not_before is neither null nor a time';
  const blockedReason = r[12];
  if (blockedReason !== null && !isStr(blockedReason)) return 'blocked_reason is neither null nor a string';
  if (!isCount(r[13])) return 'seq is not a whole number';
  const mergedCommit = r[14];
  if (mergedCommit !== null && !isStr(mergedCommit)) return 'merged_commit is neither null nor a string';
  return undefined;
}

/**
 * Reads a body written by writeLazySnapshot, from its lines (the first two whole, the task lines on
 * demand). A body of an older schema version is read whole and migrated by `parseWhole`.
 */
export function readLazySnapshot(lines: SnapshotLines, parseWhole: (json: unknown) => PipelineState): PipelineState {
  const file = lines.file;
  if (lines.head.length < HEAD_LINES) throw new Error('the body ends before its index line');
  let shell: Record<string, unknown>;
  let rows: unknown;
  try {
    shell = JSON.parse(lines.head[0]!.toString('utf8')) as Record<string, unknown>;
    rows = JSON.parse(textOf(lines.head[1]!));
  } catch {
    throw new Error('checksum matches but the state or index line does not parse as json');
  }
  if (typeof shell !== 'object' || shell === null || !Array.isArray(rows))
    throw snapshotError(file, 'line 2', 'the first lines are not a state and an index');
  // Task lines: exactly one per row.
  if (lines.count !== rows.length)
    throw new Error(`the index lists ${rows.length} tasks but the body has ${lines.count} task lines`);

  if (shell.schema_version !== STATE_SCHEMA_VERSION) {
    // Another schema version: migrations work on the whole state, so read it whole.
    const tasks: Record<string, unknown> = {};
    for (let i = 0; i < lines.count; i++) {
      const t = JSON.parse(lines.line(i).toString('utf8')) as { id?: unknown };
      tasks[String(t.id)] = t;
    }
    return parseWhole(withTasks(shell, tasks));
  }

  // Once per read: without zod's generated fast path, which costs more to build than one parse.
  const checked = stateSchema.safeParse(withTasks(shell, {}), { jitless: true });
  if (!checked.success) throw snapshotError(file, 'line 2', describeZodError(checked.error));
  const tasks: Record<string, Task> = {};
  const known = new KnownValid();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as Row;
    const problem = rowProblem(row, known);
    if (problem) throw snapshotError(file, `line 3, row ${i + 1}`, `task row ${i + 1}: ${problem}`);
    const id = row[0] as string;
    if (Object.prototype.hasOwnProperty.call(tasks, id))
      throw snapshotError(file, `line 3, row ${i + 1}`, `task ${id} appears twice in the index`);
    const t = lazyTask(row);
    lineOf.set(t, { lines, index: i, row });
    tasks[id] = t;
  }
  return { ...checked.data, tasks };
}

/** The state's members in the schema's order, with `tasks` in its place. */
function withTasks(shell: Record<string, unknown>, tasks: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(stateSchema.shape)) out[k] = k === 'tasks' ? tasks : shell[k];
  for (const k of Object.keys(shell)) if (!(k in out)) out[k] = shell[k];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing.

function rowOf(t: Task): Row {
  const row: Row = ROW_FIELDS.map((k) => t[k]);
  row.push(hasUsage(t));
  return row;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

function sameRow(a: Row, b: Row): boolean {
  return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
}

/**
 * The body of a snapshot of `state` in this layout, to be written as `file`. Afterwards every task
 * of the state reads (and is reused) from this body, so the previous one can be collected.
 */
export async function writeLazySnapshot(state: PipelineState, file: string): Promise<Buffer> {
  let deadline = performance.now() + SLICE_MS;
  const pause = async (): Promise<void> => {
    if (performance.now() <= deadline) return;
    await nextTurn();
    deadline = performance.now() + SLICE_MS;
  };
  const shell = JSON.stringify({ ...state, tasks: undefined });
  const tasks = Object.entries(state.tasks);
  const rows: Row[] = [];
  const rowJson: string[] = [];
  const lines: Buffer[] = [];
  for (const [key, t] of tasks) {
    if (key !== t.id) throw new Error(`task ${t.id} is stored under the key ${key}`);
    const row = rowOf(t);
    rows.push(row);
    rowJson.push(JSON.stringify(row));
    const ref = lineOf.get(t);
    lines.push(ref && sameRow(ref.row, row) ? ref.lines.line(ref.index) : Buffer.from(JSON.stringify(t), 'utf8'));
    await pause();
  }
  const head = Buffer.from(`${shell}\n[${rowJson.join(',')}]\n`, 'utf8');
  const parts: Buffer[] = [head];
  for (const l of lines) parts.push(l, NL_BUF);
  const body = Buffer.concat(parts);
  await pause();
  // From now on the tasks read from, and are reused from, this body.
  const starts = new Float64Array(tasks.length + 1);
  let at = head.length;
  for (let i = 0; i < tasks.length; i++) {
    starts[i] = at;
    at += lines[i]!.length + 1;
  }
  starts[tasks.length] = at;
  const written = new BodyLines(file, body, starts);
  for (let i = 0; i < tasks.length; i++) lineOf.set(tasks[i]![1], { lines: written, index: i, row: rows[i]! });
  return body;
}
