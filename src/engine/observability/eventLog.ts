import type { PipelineEventMap } from '../model/pipelineEvents';

/**
 * What a pipeline event says in a log line: its level, a sentence, the task and agent it is about,
 * and its other fields as data (tasks and agents by id, status and stage, never their whole text).
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One line of the pipeline's JSON log. */
export interface LogRecord {
  /** ISO-8601. */
  time: string;
  level: LogLevel;
  /** The pipeline event's name (`task:transition`, …) or the logger's own (`log:dropped`). */
  event: string;
  task?: string;
  agent?: string;
  message: string;
  data?: Record<string, unknown>;
}

/** The event names of the map without its index signature. */
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
type KnownEvent = {
  [K in KnownKeys<PipelineEventMap>]: { type: K; payload: PipelineEventMap[K] };
}[KnownKeys<PipelineEventMap>];

const MAX_MESSAGE = 4000;

export function describeEvent(type: string, payload: unknown): Omit<LogRecord, 'time'> {
  const d = describe({ type, payload } as KnownEvent);
  const message = d.message.length > MAX_MESSAGE ? `${d.message.slice(0, MAX_MESSAGE)}…` : d.message;
  const data = { ...(d.data ?? {}), ...summarise(payload, d.omit ?? []) };
  return {
    level: d.level,
    event: type,
    ...(d.task ? { task: d.task } : {}),
    ...(d.agent ? { agent: d.agent } : {}),
    message,
    ...(Object.keys(data).length ? { data } : {}),
  };
}

interface Described {
  level: LogLevel;
  message: string;
  task?: string | undefined;
  agent?: string | undefined;
  /** Payload fields already said by task/agent/message (or by `data`). */
  omit?: string[];
  data?: Record<string, unknown>;
}

function describe(e: KnownEvent): Described {
  switch (e.type) {
    case 'task:added': {
      const t = e.payload.task;
      return { level: 'info', task: t.id, message: `added ${t.id} (${t.status} at ${t.stage}): ${t.title}` };
    }
    case 'task:transition': {
      const { before, after, event } = e.payload;
      const agent = event.type === 'assign' ? event.agent : (before.assigned_to ?? undefined);
      const { type: transition, ...detail } = event;
      const extra = {
        task: after.id,
        agent,
        omit: ['before', 'after', 'event'],
        data: {
          transition,
          from: before.status,
          to: after.status,
          fromStage: before.stage,
          stage: after.stage,
          attempt: after.attempt,
          ...detail,
        },
      };
      switch (event.type) {
        case 'ready':
          return { ...extra, level: 'info', message: `${after.id} queued for ${after.stage} (prerequisites merged)` };
        case 'assign':
          return {
            ...extra,
            level: 'info',
            message: `${event.agent} took ${after.id} (${after.stage}, attempt ${event.attempt})`,
          };
        case 'complete':
          return {
            ...extra,
            level: 'info',
            message: `${after.id} ${before.stage} done${after.status === 'merging' ? ', merging' : ` → ${after.stage}`}`,
          };
        case 'changes_requested':
          return {
            ...extra,
            level: 'info',
            message: `${after.id} changes requested: ${event.reason} → back to ${after.stage}`,
          };
        case 'fail':
          return {
            ...extra,
            level: 'warn',
            message: `${after.id} attempt ${before.attempt} failed at ${before.stage}: ${event.reason}; retry after ${event.notBefore}`,
          };
        case 'block':
          return { ...extra, level: 'warn', message: `${after.id} blocked: ${event.reason}` };
        case 'unblock':
          return { ...extra, level: 'info', message: `${after.id} unblocked` };
        case 'requeue':
          return { ...extra, level: 'info', message: `${after.id} requeued: ${event.reason}` };
        case 'merged':
          return { ...extra, level: 'info', message: `${after.id} merged (${event.commit})` };
        case 'conflict':
          return {
            ...extra,
            level: 'warn',
            message: `${after.id} merge conflict in ${event.files.join(', ') || 'unknown files'} → back to ${after.stage}`,
          };
        case 'cancel':
          return { ...extra, level: 'info', message: `${after.id} cancelled: ${event.reason}` };
      }
      return { ...extra, level: 'info', message: `${after.id} ${before.status} → ${after.status}` };
    }
    case 'task:edited':
      return { level: 'info', task: e.payload.task.id, message: `${e.payload.task.id} edited` };
    case 'task:removed':
      return {
        level: 'info',
        task: e.payload.task.id,
        message: `${e.payload.task.id} removed (${e.payload.task.status}, never started): ${e.payload.task.title}`,
      };
    case 'agent:added':
      return {
        level: 'info',
        agent: e.payload.agent.id,
        message: `agent ${e.payload.agent.id} added (${e.payload.agent.role}): ${e.payload.agent.command}`,
      };
    case 'agent:removed':
      return { level: 'info', agent: e.payload.agent.id, message: `agent ${e.payload.agent.id} removed` };
    case 'agent:changed': {
      const { before, after } = e.payload;
      return {
        level: 'debug',
        agent: after.id,
        task: after.current_task ?? before.current_task ?? undefined,
        message: `agent ${after.id} ${before.status} → ${after.status}${after.current_task ? ` on ${after.current_task}` : ''}`,
      };
    }
    case 'mode:orchestration':
      return { level: 'info', message: `orchestration mode ${e.payload.from} → ${e.payload.to}` };
    case 'mode:switchPending':
      return {
        level: 'info',
        message: `switching to ${e.payload.to} mode once in-flight work drains (${e.payload.busy.join(', ')})`,
      };
    case 'mode:rollout':
      return { level: 'info', message: `rollout mode ${e.payload.from} → ${e.payload.to}` };
    case 'pipeline:decision':
      return { level: 'info', message: e.payload.shadow ? `shadow: ${e.payload.text}` : e.payload.text };
    case 'state:changed':
      return { level: 'debug', message: `state changed (seq ${e.payload.seq})` };
    case 'agent:started':
      return {
        level: 'info',
        task: e.payload.taskId,
        agent: e.payload.agentId,
        omit: ['taskId', 'agentId'],
        message: `${e.payload.agentId} started on ${e.payload.taskId} (${e.payload.stage}, attempt ${e.payload.attempt}): ${e.payload.command}`,
      };
    case 'agent:exited': {
      const x = e.payload;
      const how = x.signal ? `killed by ${x.signal}` : x.code === null ? 'ended' : `exited with code ${x.code}`;
      return {
        level: x.marker ? 'info' : 'warn',
        task: x.taskId,
        agent: x.agentId,
        omit: ['taskId', 'agentId'],
        message: `${x.agentId} ${how} on ${x.taskId} (attempt ${x.attempt}), ${x.marker ? 'with' : 'without'} a completion marker`,
      };
    }
    case 'check:finished': {
      const x = e.payload;
      return {
        level: x.passed ? 'info' : 'warn',
        task: x.taskId,
        omit: ['taskId'],
        message: `${x.taskId} ${x.stage} check ${x.passed ? 'passed' : 'failed'} (${x.durationMs} ms; evidence ${x.evidence})`,
      };
    }
    case 'merge:finished': {
      const x = e.payload;
      return {
        level: x.commit ? 'info' : 'warn',
        task: x.taskId,
        omit: ['taskId'],
        message: x.commit
          ? `${x.taskId} merged into ${x.into} (${x.commit}, ${x.durationMs} ms)`
          : `${x.taskId} would conflict with ${x.into} in ${x.conflicts.join(', ') || 'unknown files'}`,
      };
    }
    case 'monitor:idle': {
      const x = e.payload;
      return {
        level: 'info',
        message: `idle: ${x.done} task(s) completed${x.blocked.length ? `, blocked: ${x.blocked.join(', ')}` : ''}${x.waiting.length ? `, waiting: ${x.waiting.join(', ')}` : ''}`,
      };
    }
    case 'agent:progress':
      return {
        level: 'debug',
        agent: e.payload.agentId,
        task: e.payload.progress?.taskId,
        omit: ['agentId', 'progress', 'line'],
        message: e.payload.line ?? `${e.payload.agentId}: ${e.payload.progress?.step ?? 'no step'}`,
      };
    case 'attempt:usage': {
      const u = e.payload.usage;
      const cost = u.models.reduce((s, m) => s + (m.costUsd ?? 0), 0);
      const tokens = u.models.map(
        (m) => `${m.model} ${m.input} in, ${m.output} out, ${m.cacheRead + m.cacheWrite} cache`,
      );
      return {
        level: 'info',
        task: e.payload.taskId,
        agent: u.agent,
        omit: ['taskId'],
        message: `${e.payload.taskId} attempt ${u.attempt} (${u.stage}) spent ${tokens.join('; ') || 'no tokens'}, $${cost.toFixed(4)}`,
      };
    }
    case 'agent:paused':
      return {
        level: 'warn',
        task: e.payload.taskId,
        omit: ['taskId'],
        message: `${e.payload.agentIds.join(', ')} paused until ${e.payload.until}: ${e.payload.reason}`,
      };
    case 'monitor:info':
      return { level: 'info', message: e.payload.message, omit: ['message'] };
    case 'monitor:warning':
      return {
        level: 'warn',
        task: e.payload.taskId,
        agent: e.payload.agentId,
        omit: ['message', 'taskId', 'agentId'],
        message: e.payload.message,
      };
    case 'leader:lost': {
      const l = e.payload.leader;
      return {
        level: 'warn',
        message: `lost the leadership${l ? ` to ${l.label} (pid ${l.pid} on ${l.host})` : ''}; following read-only`,
      };
    }
    case 'leader:acquired': {
      const l = e.payload.leader;
      return { level: 'info', message: `leading the pipeline (pid ${l.pid} on ${l.host}, epoch ${l.epoch})` };
    }
  }
  // An event added after this file was written: logged by name with its fields.
  return { level: 'info', message: String((e as { type: unknown }).type) };
}

/** The payload's fields for `data`: tasks and agents by id, status and stage. */
function summarise(payload: unknown, omit: string[]): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload as Record<string, unknown>)) {
    if (omit.includes(k)) continue;
    out[k] = brief(v);
  }
  return out;
}

function brief(v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v) && 'id' in v && 'status' in v) {
    const o = v as { id: string; status: string; stage?: string; current_task?: string | null };
    return {
      id: o.id,
      status: o.status,
      ...(o.stage ? { stage: o.stage } : {}),
      ...(o.current_task ? { current_task: o.current_task } : {}),
    };
  }
  return v;
}
