// src/engine/model/ — the state model: schemas (the state's here, the configuration's in configSchema.ts),
// journal records and their reducer, batches, the codec and its migrations, the task, attempt and agent
// lifecycles, ids, events. Main file: this one. It imports only zod, ../errors and (types only) ../store
// and ../progress; the rest of the engine builds on it.
import { z } from 'zod';
import { NAME_PATTERN, TASK_ID_PATTERN } from './ids';

/**
 * The shapes of everything the pipeline persists or reads from the user: tasks, agents and the
 * state here, the configuration in configSchema.ts. All of it is validated on read and treated as
 * untrusted input.
 *
 * The state keeps the seed document's shape and words (`version`, `orchestration_mode`, `mode`,
 * `tasks{id,status,assigned_to,created_at,…}`, `agents{status,current_task,…}`), with a separate
 * `schema_version` that `migrateState` upgrades.
 */

export const taskIdSchema = z.string().regex(TASK_ID_PATTERN, 'a task id such as TASK-001');
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'lower-case letters, digits and dashes, starting with a letter');
const isoTime = z.string().min(1);

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const prioritySchema = z.enum(PRIORITIES);
/** Higher ranks are scheduled first. */
export const PRIORITY_RANK: Record<Priority, number> = { critical: 3, high: 2, medium: 1, low: 0 };

export const ROLLOUT_MODES = ['shadow', 'pilot', 'production'] as const;
export type RolloutMode = (typeof ROLLOUT_MODES)[number];
export const rolloutModeSchema = z.enum(ROLLOUT_MODES);

/** Orchestration modes are pluggable (see scheduler/strategyRegistry), so any name is stored. */
export const orchestrationModeSchema = nameSchema;

// ---------------------------------------------------------------------------------------------
// Tasks.

/** See taskLifecycle.ts for what each status means and which transitions are legal. */
export const TASK_STATUSES = ['pending', 'queued', 'working', 'merging', 'blocked', 'done', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const historyEntrySchema = z.strictObject({
  at: isoTime,
  event: z.string(),
  from: z.enum(TASK_STATUSES),
  to: z.enum(TASK_STATUSES),
  stage: z.string(),
  agent: z.string().optional(),
  note: z.string().optional(),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

/** What a user (or an import) gives to create a task. */
export const taskSpecSchema = z.strictObject({
  id: taskIdSchema.optional(),
  title: z.string().trim().min(1, 'a title is required').max(500),
  description: z.string().max(200_000).default(''),
  prerequisites: z.array(taskIdSchema).default([]),
  priority: prioritySchema.default('medium'),
  paths: z.array(z.string().min(1).max(500)).default([]),
  labels: z.array(nameSchema).default([]),
});
export type TaskSpec = z.input<typeof taskSpecSchema>;
export type TaskSpecParsed = z.infer<typeof taskSpecSchema>;

const tokenCount = z.number().int().min(0);

/** Tokens one model spent in one attempt, and what they cost (null: no price known). */
export const modelUsageSchema = z.strictObject({
  model: z.string(),
  input: tokenCount,
  output: tokenCount,
  cacheRead: tokenCount,
  cacheWrite: tokenCount,
  costUsd: z.number().min(0).nullable(),
  /** Where the cost comes from: the CLI's own report, or the config's `prices`. */
  costSource: z.enum(['cli', 'prices']).nullable(),
});
export type ModelUsageRecord = z.infer<typeof modelUsageSchema>;

/** What one attempt spent, recorded once its command has finished its output. */
export const attemptUsageSchema = z.strictObject({
  attempt: z.number().int().min(1),
  stage: nameSchema,
  agent: nameSchema,
  at: isoTime,
  models: z.array(modelUsageSchema),
  /** The CLI's session (thread) id, which its resume takes. */
  session: z.string().nullable(),
  /** For a CLI that counts per conversation (Codex): the thread's totals when this run ended. */
  thread: z.array(modelUsageSchema).optional(),
});
export type AttemptUsage = z.infer<typeof attemptUsageSchema>;

export const usageTotalsSchema = z.strictObject({
  input: tokenCount,
  output: tokenCount,
  cacheRead: tokenCount,
  cacheWrite: tokenCount,
  costUsd: z.number().min(0),
});
export type UsageTotals = z.infer<typeof usageTotalsSchema>;

export const taskUsageSchema = usageTotalsSchema.extend({ attempts: z.array(attemptUsageSchema) });
export type TaskUsage = z.infer<typeof taskUsageSchema>;

export const taskSchema = z.strictObject({
  id: taskIdSchema,
  title: z.string(),
  description: z.string(),
  prerequisites: z.array(taskIdSchema),
  priority: prioritySchema,
  paths: z.array(z.string()),
  labels: z.array(z.string()),
  status: z.enum(TASK_STATUSES),
  /** The stage the task is in, or will enter next when pending. */
  stage: nameSchema,
  assigned_to: nameSchema.nullable(),
  branch: z.string(),
  /** Counts every assignment; task files and completion markers belong to one attempt. */
  attempt: z.number().int().min(0),
  /** Failed attempts at the current stage, for the retry limit. */
  failures: z.number().int().min(0),
  /** After a failure, the task is not assigned again before this time. */
  not_before: isoTime.nullable(),
  blocked_reason: z.string().nullable(),
  created_at: isoTime,
  updated_at: isoTime,
  /** Monotonic creation order, the tie-breaker after priority. */
  seq: z.number().int().min(0),
  merged_commit: z.string().nullable(),
  history: z.array(historyEntrySchema),
  /** Tokens and cost, every attempt's and their totals (absent until an attempt reported any). */
  usage: taskUsageSchema.optional(),
});
export type Task = z.infer<typeof taskSchema>;

// ---------------------------------------------------------------------------------------------
// Agents.

export const AGENT_STATUSES = ['idle', 'working', 'paused', 'blocked', 'offline'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export const agentSchema = z.strictObject({
  id: nameSchema,
  role: nameSchema,
  /** A preset name (`claude`, `codex`, `gemini`, `aider`, `scripted`) or a command template. */
  command: z.string().min(1),
  status: z.enum(AGENT_STATUSES),
  current_task: taskIdSchema.nullable(),
  /** When the agent took its current task. */
  since: isoTime.nullable(),
  created_at: isoTime,
  /** While `paused` (a usage or rate limit of its CLI): when it resumes. */
  paused_until: isoTime.nullable().optional(),
  /** While `paused`: why, in the CLI's words. */
  paused_reason: z.string().nullable().optional(),
  /** Runs its CLI's own interactive interface in a terminal, for a person to watch and type to. */
  interactive: z.boolean().optional(),
});
export type Agent = z.infer<typeof agentSchema>;

// ---------------------------------------------------------------------------------------------
// The state.

/**
 * 2: tasks may carry `usage`, agents `paused_until`, `paused_reason` and `interactive`, and an agent
 * may be `paused` (a build that knows only 1 would misread such a state, so it refuses it).
 */
export const STATE_SCHEMA_VERSION = 2;

export const decisionSchema = z.strictObject({ at: isoTime, text: z.string() });

export const stateSchema = z.strictObject({
  /** The seed's format version. */
  version: z.literal('1.0.0'),
  schema_version: z.literal(STATE_SCHEMA_VERSION),
  orchestration_mode: orchestrationModeSchema,
  mode: rolloutModeSchema,
  /** A requested orchestration switch waiting for in-flight work to drain. */
  pending_switch: orchestrationModeSchema.nullable(),
  /** Next number for generated task ids. */
  next_task_number: z.number().int().min(1),
  next_seq: z.number().int().min(0),
  /** Sequential mode's current task (also written to `.pipeline/current-task.txt`). */
  current_task: taskIdSchema.nullable(),
  tasks: z.record(z.string(), taskSchema),
  agents: z.record(z.string(), agentSchema),
  /** The last decisions taken (shadow mode's record of what it would have done), newest last. */
  decisions: z.array(decisionSchema),
});
export type PipelineState = z.infer<typeof stateSchema>;

export function emptyState(): PipelineState {
  return {
    version: '1.0.0',
    schema_version: STATE_SCHEMA_VERSION,
    orchestration_mode: 'parallel',
    mode: 'production',
    pending_switch: null,
    next_task_number: 1,
    next_seq: 0,
    current_task: null,
    tasks: {},
    agents: {},
    decisions: [],
  };
}

/**
 * Turns a zod error into one line per problem, each with its JSON path, for messages that name the
 * place at fault.
 */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const path = i.path.length
        ? i.path
            .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
            .join('')
            .replace(/^\./, '')
        : '(top level)';
      return `${path}: ${i.message}`;
    })
    .join('; ');
}
