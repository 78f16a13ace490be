import { transitionAttempt, type AttemptEvent, type AttemptStatus } from '../model/attemptLifecycle';
import type { StageConfig } from '../model/configSchema';
import type { RunHandle, RunRequest } from '../ports/agentRunner';

/**
 * The attempts in flight, one per agent at most, each moving along the attempt lifecycle
 * (model/attemptLifecycle.ts). The table is the monitor's memory of what it started; the state
 * (journal) is the truth about tasks and agents, and a restarted monitor rebuilds the table from it.
 */
export interface Attempt {
  readonly agentId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly stage: StageConfig;
  /** The task file of this attempt; empty until it is written. */
  taskFile: string;
  /** The agent's command, once started (or re-attached after a restart). */
  handle: RunHandle | null;
  /** Clock time the attempt began, for durations. */
  readonly startedAt: number;
  status: AttemptStatus;
  /** What the runner was asked to run (the log, the command), once known. */
  request: RunRequest | null;
  /** The stage's timeout and stall watch, while armed. */
  timers: NodeJS.Timeout[];
  /**
   * True while its launch still works on the worktree (checkout, task file): an attempt settled
   * meanwhile stays in the table until the launch has let go, so nothing is reported idle while git
   * still writes in that worktree.
   */
  launching: boolean;
}

export class AttemptTable {
  private readonly byAgent = new Map<string, Attempt>();

  open(
    a: Omit<Attempt, 'status' | 'timers' | 'handle' | 'taskFile' | 'request' | 'launching'> & {
      taskFile?: string;
      launching?: boolean;
    },
  ): Attempt {
    const attempt: Attempt = {
      taskFile: '',
      launching: false,
      ...a,
      handle: null,
      request: null,
      status: 'preparing',
      timers: [],
    };
    this.byAgent.set(a.agentId, attempt);
    return attempt;
  }

  get(agentId: string): Attempt | undefined {
    return this.byAgent.get(agentId);
  }

  all(): Attempt[] {
    return [...this.byAgent.values()];
  }

  get size(): number {
    return this.byAgent.size;
  }

  /**
   * Moves an attempt along its lifecycle. False when the event is a race the lifecycle ignores (the
   * attempt settled already, a marker read twice): the caller then does nothing. Settling clears
   * the attempt's timers; it stays in the table until `close`, once its command is stopped and its
   * outcome recorded, so the pipeline is never reported idle while an agent is still being stopped.
   */
  move(a: Attempt, event: AttemptEvent): boolean {
    const next = transitionAttempt(a.status, event);
    if (next === null) return false;
    a.status = next;
    if (next === 'settled') {
      disarm(a);
    }
    return true;
  }

  /** Removes a settled attempt whose launch has let go (unless its agent has started another since). */
  close(a: Attempt): void {
    if (a.status !== 'settled' || a.launching) return;
    if (this.byAgent.get(a.agentId) === a) this.byAgent.delete(a.agentId);
  }
}

/** Clears an attempt's timeout and stall watch. */
export function disarm(a: Attempt): void {
  for (const t of a.timers) clearTimeout(t);
  a.timers = [];
}
