import type { Agent, PipelineState, Task } from '../model/schema';
import { emptyState } from '../model/schema';
import type { StateRecord } from '../model/stateRecords';
import type { Sql } from './pgDatabase';
import type { TablePlan, TableProjection } from './stateTables';

/**
 * The pipeline's state in tables (schema in migrations/v001Initial.ts):
 *
 * - `tasks`: one row per task, its whole body as jsonb (what the state is read back from) and the
 *   columns people query (status, stage, assigned agent, attempt, priority);
 * - `task_history`: one row per history entry, appended as the task's history grows;
 * - `task_attempts`: one row per attempt: stage, agent, start, end, outcome, and what it spent;
 * - `agents`: one row per agent;
 * - `state_head.body`: everything else (modes, counters, sequential mode's current task, decisions).
 *
 * A commit's records say which of these they touch (`plan`); only those rows are written.
 */

type Head = Omit<PipelineState, 'tasks' | 'agents'>;

interface Touched {
  /** Each task the records touch, as it was before them. */
  tasks: Map<string, Task | undefined>;
  /** Each agent the records touch, as it was before them. */
  agents: Map<string, Agent | undefined>;
  /** Everything but tasks and agents, as it was, when the records change any of it. */
  head: Head | undefined;
}

function touched(state: PipelineState, records: readonly StateRecord[]): Touched {
  const t: Touched = { tasks: new Map(), agents: new Map(), head: undefined };
  // Lifecycles and edits replace task and agent objects, never change them: keeping the object is
  // keeping the task as it was. Only the decisions list is changed in place, so it is copied.
  const task = (id: string) => {
    if (!t.tasks.has(id)) t.tasks.set(id, state.tasks[id]);
  };
  const agent = (id: string) => {
    if (!t.agents.has(id)) t.agents.set(id, state.agents[id]);
  };
  const head = () => {
    t.head ??= { ...headOf(state), decisions: [...state.decisions] };
  };
  for (const r of records) {
    switch (r.type) {
      case 'task.added':
        task(r.task.id);
        head(); // next_seq, next_task_number
        break;
      case 'task.removed':
        task(r.id);
        head(); // current_task
        break;
      case 'task.transition':
      case 'task.edited':
      case 'attempt.usage':
        task(r.id);
        break;
      case 'agent.added':
        agent(r.agent.id);
        break;
      case 'agent.removed':
      case 'agent.updated':
        agent(r.id);
        break;
      case 'mode.orchestration':
      case 'mode.rollout':
      case 'mode.pending_switch':
      case 'sequential.current':
      case 'decision':
        head();
        break;
    }
  }
  return t;
}

export function headOf(state: PipelineState): Head {
  const { tasks: _tasks, agents: _agents, ...head } = state;
  return head;
}

interface AttemptRow {
  task_id: string;
  attempt: number;
  stage: string;
  agent: string | null;
  started_at?: string | null;
  ended_at?: string | null;
  outcome?: string | null;
  note?: string | null;
  usage?: unknown;
}

/** What the attempts table learns from one task's change: attempts started, ended, and spending recorded. */
function attemptRows(
  before: Task | undefined,
  after: Task,
): { starts: AttemptRow[]; ends: AttemptRow[]; usage: AttemptRow[] } {
  const starts: AttemptRow[] = [];
  const ends: AttemptRow[] = [];
  const usage: AttemptRow[] = [];
  const added = after.history.slice(before?.history.length ?? after.history.length);
  if (before && before.status === 'working' && (after.status !== 'working' || after.attempt !== before.attempt)) {
    const out = added.find((h) => h.from === 'working');
    ends.push({
      task_id: after.id,
      attempt: before.attempt,
      stage: before.stage,
      agent: before.assigned_to,
      ended_at: out?.at ?? after.updated_at,
      outcome: out?.event ?? null,
      note: out?.note ?? null,
    });
  }
  if (before && after.status === 'working' && after.attempt > before.attempt) {
    const assign = [...added].reverse().find((h) => h.event === 'assign');
    starts.push({
      task_id: after.id,
      attempt: after.attempt,
      stage: after.stage,
      agent: after.assigned_to,
      started_at: assign?.at ?? after.updated_at,
    });
  }
  const old = new Map((before?.usage?.attempts ?? []).map((u) => [u.attempt, JSON.stringify(u)]));
  for (const u of after.usage?.attempts ?? []) {
    if (old.get(u.attempt) === JSON.stringify(u)) continue;
    usage.push({ task_id: after.id, attempt: u.attempt, stage: u.stage, agent: u.agent, usage: u });
  }
  return { starts, ends, usage };
}

const TASK_COLUMNS = `id text, title text, status text, stage text, priority text, assigned_to text, attempt int,
  created_order bigint, created_at text, updated_at text, body jsonb`;

async function writeTasks(sql: Sql, t: Touched, state: PipelineState, seq: number): Promise<void> {
  const rows: unknown[] = [];
  const gone: string[] = [];
  const history: unknown[] = [];
  const starts: AttemptRow[] = [];
  const ends: AttemptRow[] = [];
  const usage: AttemptRow[] = [];
  for (const [id, before] of t.tasks) {
    const after = state.tasks[id];
    if (!after) {
      if (before) gone.push(id);
      continue;
    }
    if (after === before) continue;
    rows.push({
      id,
      title: after.title,
      status: after.status,
      stage: after.stage,
      priority: after.priority,
      assigned_to: after.assigned_to,
      attempt: after.attempt,
      created_order: after.seq,
      created_at: after.created_at,
      updated_at: after.updated_at,
      body: after,
    });
    const from = before && before.history.length <= after.history.length ? before.history.length : 0;
    after.history.slice(from).forEach((h, i) =>
      history.push({
        task_id: id,
        n: from + i,
        at: h.at,
        event: h.event,
        from_status: h.from,
        to_status: h.to,
        stage: h.stage,
        agent: h.agent ?? null,
        note: h.note ?? null,
      }),
    );
    const a = attemptRows(before, after);
    starts.push(...a.starts);
    ends.push(...a.ends);
    usage.push(...a.usage);
  }
  if (gone.length) await sql.query('DELETE FROM pipeline.tasks WHERE id = ANY($1::text[])', [gone]);
  if (rows.length) {
    await sql.query(
      `INSERT INTO pipeline.tasks (id, title, status, stage, priority, assigned_to, attempt, created_order, created_at,
                                   updated_at, body, changed_seq)
       SELECT x.*, $2 FROM jsonb_to_recordset($1::jsonb) AS x(${TASK_COLUMNS})
       ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, status = EXCLUDED.status, stage = EXCLUDED.stage,
         priority = EXCLUDED.priority, assigned_to = EXCLUDED.assigned_to, attempt = EXCLUDED.attempt,
         created_order = EXCLUDED.created_order, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
         body = EXCLUDED.body, changed_seq = EXCLUDED.changed_seq`,
      [JSON.stringify(rows), seq],
    );
  }
  if (history.length) {
    await sql.query(
      `INSERT INTO pipeline.task_history (task_id, n, at, event, from_status, to_status, stage, agent, note)
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(task_id text, n int, at text, event text, from_status text,
         to_status text, stage text, agent text, note text)
       ON CONFLICT (task_id, n) DO NOTHING`,
      [JSON.stringify(history)],
    );
  }
  const attempts = (rows: AttemptRow[], set: string) =>
    rows.length
      ? sql.query(
          `INSERT INTO pipeline.task_attempts (task_id, attempt, stage, agent, started_at, ended_at, outcome, note, usage)
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(task_id text, attempt int, stage text, agent text,
             started_at text, ended_at text, outcome text, note text, usage jsonb)
           ON CONFLICT (task_id, attempt) DO UPDATE SET ${set}`,
          [JSON.stringify(rows)],
        )
      : undefined;
  await attempts(starts, 'stage = EXCLUDED.stage, agent = EXCLUDED.agent, started_at = EXCLUDED.started_at');
  await attempts(ends, 'ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, note = EXCLUDED.note');
  await attempts(usage, 'usage = EXCLUDED.usage');
}

async function writeAgents(sql: Sql, ids: Iterable<string>, state: PipelineState, seq: number): Promise<void> {
  const rows: unknown[] = [];
  const gone: string[] = [];
  for (const id of ids) {
    const a: Agent | undefined = state.agents[id];
    if (!a) gone.push(id);
    else rows.push({ id, role: a.role, status: a.status, current_task: a.current_task, body: a });
  }
  if (gone.length) await sql.query('DELETE FROM pipeline.agents WHERE id = ANY($1::text[])', [gone]);
  if (rows.length) {
    await sql.query(
      `INSERT INTO pipeline.agents (id, role, status, current_task, body, changed_seq)
       SELECT x.*, $2 FROM jsonb_to_recordset($1::jsonb) AS x(id text, role text, status text, current_task text, body jsonb)
       ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role, status = EXCLUDED.status,
         current_task = EXCLUDED.current_task, body = EXCLUDED.body, changed_seq = EXCLUDED.changed_seq`,
      [JSON.stringify(rows), seq],
    );
  }
}

export const pipelineTables: TableProjection<PipelineState, StateRecord> = {
  plan(state, records): TablePlan<PipelineState> {
    const t = touched(state, records);
    return {
      async write(sql, after, seq) {
        await writeTasks(sql, t, after, seq);
        if (t.agents.size) await writeAgents(sql, t.agents.keys(), after, seq);
        if (t.head) await sql.query('UPDATE pipeline.state_head SET body = $1 WHERE id = 1', [headOf(after)]);
      },
      undo(s) {
        for (const [id, before] of t.tasks) {
          if (before) s.tasks[id] = before;
          else delete s.tasks[id];
        }
        for (const [id, before] of t.agents) {
          if (before) s.agents[id] = before;
          else delete s.agents[id];
        }
        if (t.head) Object.assign(s, t.head);
      },
    };
  },

  async load(sql) {
    const head = await sql.query<{ body: Head | null }>('SELECT body FROM pipeline.state_head WHERE id = 1');
    const tasks = await sql.query<{ body: Task }>('SELECT body FROM pipeline.tasks ORDER BY created_order, id');
    const agents = await sql.query<{ body: Agent }>(
      `SELECT body FROM pipeline.agents ORDER BY body->>'created_at', id`,
    );
    const body = head.rows[0]?.body ?? null;
    if (!body && !tasks.rowCount && !agents.rowCount) return undefined;
    return {
      ...(body ?? headOf(emptyState())),
      tasks: Object.fromEntries(tasks.rows.map((r) => [r.body.id, r.body])),
      agents: Object.fromEntries(agents.rows.map((r) => [r.body.id, r.body])),
    };
  },
};
