import { isDeepStrictEqual } from 'node:util';
import { PipelineError } from '../errors';
import { formatTaskId } from './ids';
import { emptyState, type PipelineState } from './schema';
import { applyRecord, type StateRecord } from './stateRecords';

/**
 * A whole state as records that recreate it from nothing: how a pipeline's state moves from one
 * store to another (`pipeline db import`, from the file journal into PostgreSQL) through the stores'
 * one write path, so the target validates and projects it as it would any change. Tasks are added
 * whole (their history, attempts and usage with them); agents whole; then the modes, the sequential
 * task and the decisions.
 */
export function recordsRecreating(state: PipelineState, taskPrefix: string): StateRecord[] {
  const records: StateRecord[] = [];
  // A generated id takes the next number only when a task of exactly that number is added
  // (stateRecords.ts): tasks are added by their number, and a number whose task was removed is
  // taken and given back again, as it was, so new tasks are numbered as the files would number them.
  const number = (id: string) => Number(/-(\d+)$/.exec(id)?.[1] ?? NaN);
  const tasks = Object.values(state.tasks).sort((a, b) => a.seq - b.seq);
  const byNumber = new Map<number, (typeof tasks)[number][]>();
  for (const t of tasks) {
    const n = number(t.id);
    if (Number.isInteger(n)) byNumber.set(n, [...(byNumber.get(n) ?? []), t]);
  }
  const template = tasks[0];
  for (let n = 1; n < state.next_task_number; n++) {
    const own = byNumber.get(n);
    if (own) {
      for (const task of own) records.push({ type: 'task.added', task: structuredClone(task) });
      byNumber.delete(n);
    } else if (template) {
      const id = formatTaskId(taskPrefix, n);
      if (state.tasks[id]) continue;
      const placeholder = {
        ...structuredClone(template),
        id,
        title: `(removed ${id})`,
        history: [],
        prerequisites: [],
      };
      delete placeholder.usage;
      records.push({ type: 'task.added', task: { ...placeholder, status: 'pending', seq: 0 } });
      records.push({ type: 'task.removed', id, at: template.created_at });
    }
  }
  const added = new Set(records.flatMap((r) => (r.type === 'task.added' ? [r.task.id] : [])));
  for (const task of tasks) if (!added.has(task.id)) records.push({ type: 'task.added', task: structuredClone(task) });
  // The order of tasks (their seq) continues after the last one ever added, removed ones included:
  // a task numbered 0 (which no generated id takes) carries that seq in and out again.
  const lastSeq = Math.max(-1, ...tasks.map((t) => t.seq));
  const zero = formatTaskId(taskPrefix, 0);
  if (template && state.next_seq > lastSeq + 1 && !state.tasks[zero]) {
    const placeholder = { ...structuredClone(template), id: zero, title: '(order of removed tasks)', history: [] };
    delete placeholder.usage;
    records.push({
      type: 'task.added',
      task: { ...placeholder, prerequisites: [], status: 'pending', seq: state.next_seq - 1 },
    });
    records.push({ type: 'task.removed', id: zero, at: template.created_at });
  }
  for (const agent of Object.values(state.agents)) records.push({ type: 'agent.added', agent: structuredClone(agent) });
  records.push({ type: 'mode.orchestration', mode: state.orchestration_mode });
  records.push({ type: 'mode.rollout', mode: state.mode });
  records.push({ type: 'mode.pending_switch', mode: state.pending_switch });
  records.push({ type: 'sequential.current', id: state.current_task });
  for (const d of state.decisions) records.push({ type: 'decision', text: d.text, at: d.at });
  return records;
}

/**
 * What the records recreate must be the state. Only the next generated task number may differ
 * (explicit ids such as FIX-7 can move it in ways a replay cannot repeat): that is a note. Anything
 * else throws, so an import never writes a state that is not the source. Returns the notes.
 */
export function checkRecreation(state: PipelineState, records: readonly StateRecord[]): string[] {
  const replayed = emptyState();
  for (const r of records) applyRecord(replayed, r);
  const notes: string[] = [];
  if (replayed.next_task_number !== state.next_task_number) {
    notes.push(
      `New task ids continue from ${replayed.next_task_number} (the files said ${state.next_task_number}: tasks since removed had taken the numbers between).`,
    );
    replayed.next_task_number = state.next_task_number;
  }
  if (!isDeepStrictEqual(replayed, state)) {
    const differs = (Object.keys(state) as (keyof PipelineState)[]).filter(
      (k) => !isDeepStrictEqual(replayed[k], state[k]),
    );
    throw new PipelineError(
      'invalid-state',
      `The state's records do not recreate it (they differ in ${differs.join(', ')}).`,
      {
        fix: 'Nothing was written. Report this with the state directory; the files are unchanged.',
      },
    );
  }
  return notes;
}
