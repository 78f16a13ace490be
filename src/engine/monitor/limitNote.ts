/**
 * How a usage limit's requeue is noted in the task's history (limits.ts; the next attempt looks for
 * it to resume the session). A module of its own so the views, loaded at activation, can read it
 * without the CLI adapters that limits.ts brings.
 */
export const LIMIT_NOTE = 'paused by a usage limit';
