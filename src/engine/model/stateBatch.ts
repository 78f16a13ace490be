import { PipelineError } from '../errors';
import type { Agent, PipelineState, Task } from './schema';
import type { AgentChange, StateRecord, TaskEdit } from './stateRecords';
import { transitionAgent, type AgentEvent } from './agentLifecycle';
import { transitionTask, type TaskEvent } from './taskLifecycle';

/**
 * A set of changes to commit together. Each change is computed here, on an overlay of the tasks and
 * agents it touches, with the same pure functions the journal replay uses; so a change that does not
 * apply throws before anything is written, and the before/after pairs for the events are known
 * without copying the state.
 */
export interface TaskChange {
  before: Task | undefined;
  after: Task;
  event?: TaskEvent;
}
export interface AgentChangeEntry {
  before: Agent | undefined;
  after: Agent | undefined;
}

export class StateBatch {
  readonly records: StateRecord[] = [];
  readonly taskChanges: TaskChange[] = [];
  readonly agentChanges: AgentChangeEntry[] = [];
  /** Tasks removed by this batch, as they were. */
  readonly removedTasks: Task[] = [];
  private tasks = new Map<string, Task>();
  private removed = new Set<string>();
  private agents = new Map<string, Agent | undefined>();

  constructor(
    private readonly state: PipelineState,
    readonly at: string,
  ) {}

  task(id: string): Task {
    const t = this.removed.has(id) ? undefined : (this.tasks.get(id) ?? this.state.tasks[id]);
    if (!t)
      throw new PipelineError('unknown-task', `Unknown task ${id}.`, {
        where: id,
        fix: 'List the tasks with `pipeline task list`.',
      });
    return t;
  }

  agent(id: string): Agent {
    const a = this.agents.has(id) ? this.agents.get(id) : this.state.agents[id];
    if (!a)
      throw new PipelineError('unknown-agent', `Unknown agent ${id}.`, {
        where: id,
        fix: 'List the agents with `pipeline agent list`.',
      });
    return a;
  }

  addTask(task: Task): void {
    this.records.push({ type: 'task.added', task });
    this.tasks.set(task.id, task);
    this.taskChanges.push({ before: undefined, after: task });
  }

  transition(id: string, event: TaskEvent): Task {
    const before = this.task(id);
    const after = transitionTask(before, event, this.at);
    this.records.push({ type: 'task.transition', id, event, at: this.at });
    this.tasks.set(id, after);
    this.taskChanges.push({ before, after, event });
    return after;
  }

  editTask(id: string, changes: TaskEdit): Task {
    const before = this.task(id);
    const after: Task = { ...before, updated_at: this.at };
    for (const [k, v] of Object.entries(changes)) if (v !== undefined) (after as Record<string, unknown>)[k] = v;
    this.records.push({ type: 'task.edited', id, changes, at: this.at });
    this.tasks.set(id, after);
    this.taskChanges.push({ before, after });
    return after;
  }

  /** Removes a task from the state; the caller has checked that nothing needs it any more. */
  removeTask(id: string): Task {
    const before = this.task(id);
    this.records.push({ type: 'task.removed', id, at: this.at });
    this.tasks.delete(id);
    this.removed.add(id);
    this.removedTasks.push(before);
    return before;
  }

  addAgent(agent: Agent): void {
    this.records.push({ type: 'agent.added', agent });
    this.agents.set(agent.id, agent);
    this.agentChanges.push({ before: undefined, after: agent });
  }

  removeAgent(id: string): void {
    const before = this.agent(id);
    this.records.push({ type: 'agent.removed', id });
    this.agents.set(id, undefined);
    this.agentChanges.push({ before, after: undefined });
  }

  updateAgent(id: string, changes: AgentChange): Agent {
    const before = this.agent(id);
    const after: Agent = { ...before };
    for (const [k, v] of Object.entries(changes)) if (v !== undefined) (after as Record<string, unknown>)[k] = v;
    this.records.push({ type: 'agent.updated', id, changes });
    this.agents.set(id, after);
    this.agentChanges.push({ before, after });
    return after;
  }

  /** Applies an agent lifecycle event (see agentLifecycle.ts); a no-op event records nothing. */
  agentEvent(id: string, event: AgentEvent): Agent {
    const before = this.agent(id);
    const change = transitionAgent(before, event);
    return change ? this.updateAgent(id, change) : before;
  }

  record(rec: StateRecord): void {
    this.records.push(rec);
  }

  get empty(): boolean {
    return this.records.length === 0;
  }
}
