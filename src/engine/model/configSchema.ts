import { z } from 'zod';
import { nameSchema } from './schema';

/**
 * The configuration's shape: `.pipeline/config.json`, written by `pipeline init`, edited by people
 * (home/configFile.ts reads it and reports a problem with its place and fix). Its defaults live
 * here too, so a missing key and `pipeline init` agree.
 */

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

/**
 * How far below the engine's CPU priority agents run (`agentNiceness`, added to the engine's own
 * niceness): the engine's short git commands on the hand-off path get a core before the agents'
 * builds and tests do. See agents/agentPriority.ts.
 */
export const AGENT_NICENESS_DEFAULT = 10;

/** A configuration problem's own fix, carried on the issue for the message that reports it. */
export interface ConfigIssueParams {
  fix: string;
}

/** The environment variable a PostgreSQL store's URL is read from unless `store.urlEnv` names another. */
export const DEFAULT_DATABASE_URL_ENV = 'PIPELINE_DATABASE_URL';

/**
 * Where the state is kept: absent or `{"kind": "file"}`, the file journal in `.pipeline/state/`
 * (the embedded default); `{"kind": "postgres", "urlEnv": "PIPELINE_DATABASE_URL"}`, a PostgreSQL
 * database whose URL is read from that environment variable. The URL itself is never stored in the
 * file: it usually holds a password, and the file is committed with the repository.
 */
export const storeConfigSchema = z
  .looseObject({
    kind: z.enum(['file', 'postgres']),
    urlEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable, such as PIPELINE_DATABASE_URL')
      .optional(),
  })
  .superRefine((s, ctx) => {
    for (const key of Object.keys(s)) {
      if (key === 'kind' || key === 'urlEnv') continue;
      const url = /url|uri|dsn|connection|password/i.test(key);
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: url
          ? 'a database URL or password is never stored in the configuration file'
          : 'is not a store setting',
        params: {
          fix: url
            ? `Delete "${key}" and put the URL in the environment variable named by "urlEnv" (default ${DEFAULT_DATABASE_URL_ENV}), for example \`export ${DEFAULT_DATABASE_URL_ENV}=postgres://user:password@host:5432/pipeline\`.`
            : 'A store takes "kind" ("file" or "postgres") and, for postgres, "urlEnv".',
        } satisfies ConfigIssueParams,
      });
    }
  })
  .transform((s) =>
    s.kind === 'postgres'
      ? { kind: 'postgres' as const, urlEnv: s.urlEnv ?? DEFAULT_DATABASE_URL_ENV }
      : { kind: 'file' as const },
  );
export type StoreConfig = z.infer<typeof storeConfigSchema>;

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
    /**
     * Niceness added to the engine's own for every agent's processes and stage checks (0: the
     * engine's priority; 19: the lowest), so a busy machine serves the engine's coordination first.
     */
    agentNiceness: z
      .number()
      .int('must be a whole number')
      .min(0, "must be 0 (the engine's own priority) or more")
      .max(19, 'must be 19 (the lowest priority) or less')
      .default(AGENT_NICENESS_DEFAULT),
    /** Where the state is kept (see storeConfigSchema); absent: the file journal. */
    store: storeConfigSchema.optional(),
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
