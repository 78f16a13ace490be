// src/engine/model/ — the state model: schemas, journal records and their reducer, batches, the codec and
// its migrations, the task, attempt and agent lifecycles, ids, events. Main file: this one. It imports only
// zod, ../errors and (types only) ../store; the rest of the engine builds on it.
import { z } from 'zod';
import { NAME_PATTERN, TASK_ID_PATTERN } from './ids';

/**
 * The shapes of everything the pipeline persists or reads from the user: configuration, tasks,
 * agents and the state. All of it is validated on read and treated as untrusted input.
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
// Configuration: `.pipeline/config.json`, written by `pipeline init`, edited by people.

export const stageSchema = z.strictObject({
  /** The stage's name, also its queue's name in `status --json`. */
  name: nameSchema,
  /** The role whose agents work this stage. */
  role: nameSchema,
  /** A shell command that must pass in the worktree before the stage counts as done. */
  check: z.string().min(1).optional(),
  /** Seconds an agent may work on this stage before the attempt counts as failed (default: `stageTimeoutSeconds`). */
  timeoutSeconds: z.number().int().positive().optional(),
  /** Seconds without any output from the agent after which the attempt counts as stalled (0: never; default: `stallSeconds`). */
  stallSeconds: z.number().int().min(0).optional(),
  /**
   * A work-in-progress limit: at most this many tasks working at this stage at once, however many
   * agents its role has (default: as many as there are agents).
   */
  maxAgents: z.number().int().min(1).optional(),
});
export type StageConfig = z.infer<typeof stageSchema>;

export const retrySchema = z.strictObject({
  /** Attempts per stage before the task is blocked. */
  maxAttempts: z.number().int().min(1).max(100).default(3),
  baseDelayMs: z.number().int().min(0).default(2_000),
  maxDelayMs: z.number().int().min(0).default(60_000),
  /** Fraction of the delay drawn at random, so retries of many tasks do not line up. */
  jitter: z.number().min(0).max(1).default(0.2),
});
export type RetryConfig = z.infer<typeof retrySchema>;

/** What the agents of one CLI may do beyond, or short of, the preset's defaults (see agents/cli/). */
export const agentPermissionsSchema = z.strictObject({
  /** Extra tool or command patterns allowed (Claude Code: `Bash(make:*)`; Gemini CLI: `run_shell_command(make)`). */
  allow: z.array(z.string().min(1)).default([]),
  /** Patterns refused even when a default allows them. */
  deny: z.array(z.string().min(1)).default([]),
  /** Extra command-line arguments, appended as they are (never through a shell). */
  extraArgs: z.array(z.string()).default([]),
});

/** What a model's tokens cost, in US dollars per million tokens (`prices` in the config). */
export const modelPriceSchema = z.strictObject({
  inputPerMTok: z.number().min(0),
  outputPerMTok: z.number().min(0),
  /** Cached input read; default: the input price. */
  cacheReadPerMTok: z.number().min(0).optional(),
  /** Input written to the cache; default: the input price. */
  cacheWritePerMTok: z.number().min(0).optional(),
});
export type ModelPrice = z.infer<typeof modelPriceSchema>;

/** Spending limits: a task (or the run) over its budget is blocked, with the figure in the reason. */
export const budgetSchema = z.strictObject({
  /** US dollars one task may cost, every stage and attempt together. */
  perTaskUsd: z.number().positive().optional(),
  /** US dollars one run of the monitor (`pipeline run`, a window's Start) may cost, all tasks together. */
  perRunUsd: z.number().positive().optional(),
});

export const DEFAULT_STAGES: StageConfig[] = [
  { name: 'architect', role: 'architect' },
  { name: 'test', role: 'tester' },
  { name: 'implementation', role: 'implementer' },
  { name: 'supervisor', role: 'supervisor' },
];

/** Where change requests and merge conflicts send a task, unless the configuration says otherwise. */
export const DEFAULT_REWORK_STAGE = 'implementation';
/**
 * The stages in which overlapping tasks never meet, unless the configuration says otherwise: those of
 * these that the configuration has (a pipeline without a test stage keeps implementation apart).
 */
export const DEFAULT_CONFLICT_STAGES: readonly string[] = ['test', 'implementation'];

/** A configuration problem's own fix, carried on the issue for the message that reports it. */
export interface ConfigIssueParams {
  fix: string;
}

export const configSchema = z
  .strictObject({
    schema_version: z.literal(1).default(1),
    /** The branch that approved work is merged into. */
    targetBranch: z.string().min(1).default('main'),
    /** Pilot-mode merges land here until a person promotes them. */
    pilotBranch: z.string().min(1).default('pipeline/pilot'),
    /** In pilot mode, only tasks with this label run. */
    pilotLabel: nameSchema.default('pilot'),
    /** Stages in order; the last one reviews, and its approval merges. */
    stages: z.array(stageSchema).min(1).default(DEFAULT_STAGES),
    /** Where "changes requested" and merge conflicts send a task back to (default DEFAULT_REWORK_STAGE). */
    reworkStage: nameSchema.optional(),
    /** Two tasks whose paths overlap are never in these stages at the same time (default: see above). */
    conflictStages: z.array(nameSchema).optional(),
    /** Prefix of generated task ids. */
    taskPrefix: z
      .string()
      .regex(/^[A-Z][A-Z0-9]{0,15}$/)
      .default('TASK'),
    /** Directory for agent worktrees, relative to the repository root (default `../<repo>.pipeline-worktrees`). */
    worktreeRoot: z.string().min(1).optional(),
    retry: retrySchema.default({ maxAttempts: 3, baseDelayMs: 2_000, maxDelayMs: 60_000, jitter: 0.2 }),
    /** The reconciliation rescan's interval in seconds when idle, normal and busy (the seed's 60/30/15). */
    rescanSeconds: z
      .strictObject({
        idle: z.number().positive().default(60),
        normal: z.number().positive().default(30),
        busy: z.number().positive().default(15),
      })
      .default({ idle: 60, normal: 30, busy: 15 }),
    /** A snapshot of the state is written after this many journal records. */
    snapshotEvery: z.number().int().min(1).default(1000),
    /** Seconds an agent may work on a stage, unless the stage says otherwise: a hung CLI cannot hold a task for ever. */
    stageTimeoutSeconds: z.number().int().positive().default(3600),
    /** Seconds without any output from an agent after which its attempt counts as stalled (0: never). */
    stallSeconds: z.number().int().min(0).default(900),
    /**
     * After a task's branch is merged, delete it (never a branch with commits the branch it was merged
     * into lacks): `git branch` then lists the work still under way.
     */
    deleteMergedBranches: z.boolean().default(true),
    /** Per agent CLI (`claude`, `codex`, `gemini`, `aider`): what its agents may do beyond, or short of, the preset's defaults. */
    agentCli: z.record(z.string(), agentPermissionsSchema).default({}),
    /**
     * Prices per model, for CLIs that report tokens but no cost (Codex, Gemini CLI). A key is a
     * model name, a prefix ending in `*` (`gpt-5*`), or `*` for any other model.
     */
    prices: z.record(z.string(), modelPriceSchema).default({}),
    /** Spending limits per task and per run (US dollars); none by default. */
    budget: budgetSchema.default({}),
    /** Seconds an agent pauses after a usage or rate limit whose reset time its CLI did not say. */
    limitBackoffSeconds: z.number().int().positive().default(900),
    /**
     * Seconds an agent's command may go on after its completion marker, to finish its output (the
     * token counts and cost come last), before it is stopped.
     */
    markerGraceSeconds: z.number().min(0).max(300).default(10),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.stages.forEach((s, i) => {
      if (names.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['stages', i, 'name'], message: `stage "${s.name}" appears twice` });
      names.add(s.name);
    });
    const list = [...names].join(', ');
    // A default that names a missing stage is not the user's mistake: the message says the key is
    // absent and that it must be set, since deleting it (the usual fix) is what led here.
    if (c.reworkStage === undefined && !names.has(DEFAULT_REWORK_STAGE))
      ctx.addIssue({
        code: 'custom',
        path: ['reworkStage'],
        message: `is not set, and its default "${DEFAULT_REWORK_STAGE}" is not one of the stages (${list})`,
        params: {
          fix: `Add "reworkStage" naming the stage that change requests and merge conflicts send a task back to: one of ${list}.`,
        } satisfies ConfigIssueParams,
      });
    if (c.reworkStage !== undefined && !names.has(c.reworkStage))
      ctx.addIssue({
        code: 'custom',
        path: ['reworkStage'],
        message: `"${c.reworkStage}" is not one of the stages (${list})`,
        params: {
          fix: `Set "reworkStage" to one of ${list}${names.has(DEFAULT_REWORK_STAGE) ? `, or delete the key to use "${DEFAULT_REWORK_STAGE}"` : ''}.`,
        } satisfies ConfigIssueParams,
      });
    const conflictDefault = defaultConflictStages(names);
    c.conflictStages?.forEach((s, i) => {
      if (!names.has(s))
        ctx.addIssue({
          code: 'custom',
          path: ['conflictStages', i],
          message: `"${s}" is not one of the stages (${list})`,
          params: {
            fix: `List only stages in "conflictStages" (${list}), or delete the key to use the default (${conflictDefault.length ? conflictDefault.join(', ') : 'none of them'}).`,
          } satisfies ConfigIssueParams,
        });
    });
  })
  .transform((c) => ({
    ...c,
    reworkStage: c.reworkStage ?? DEFAULT_REWORK_STAGE,
    conflictStages: c.conflictStages ?? defaultConflictStages(new Set(c.stages.map((s) => s.name))),
  }));
export type PipelineConfig = z.infer<typeof configSchema>;

function defaultConflictStages(stages: ReadonlySet<string>): string[] {
  return DEFAULT_CONFLICT_STAGES.filter((s) => stages.has(s));
}

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
