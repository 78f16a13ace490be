// src/engine/progress/ — what working agents do right now (not state: it never reaches the journal). Main
// file: this one, the folder's only one. It imports the model's events and types.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TypedEvents } from '../model/events';
import type { PipelineEventMap } from '../model/pipelineEvents';
import type { UsageTotals } from '../model/schema';

/**
 * What each working agent is doing right now: its current step ("Bash: npm test"), the last thing
 * it said, and the tokens and cost so far. Progress is not state: it changes many times a minute
 * and means nothing after the attempt, so it never reaches the journal. The leader keeps it in
 * memory, announces each change ('agent:progress'), and rewrites `.pipeline/run/progress.json` at
 * most once a second for the processes that follow (`pipeline status`, another window).
 */
export interface AgentProgress {
  agentId: string;
  taskId: string;
  stage: string;
  attempt: number;
  /** When the attempt started (ms since the epoch). */
  startedAt: number;
  /** The current step, one line; null before the first. */
  step: string | null;
  stepAt: number | null;
  /** Steps so far in this attempt. */
  steps: number;
  /** The last line the model said. */
  message: string | null;
  /** Tokens and cost so far (the CLI's running count; final once the attempt is recorded). */
  usage: UsageTotals | null;
  /** The CLI's session id, once the stream gave it. */
  session: string | null;
}

export interface ProgressFile {
  /** When it was written (ms since the epoch) and by which process. */
  at: number;
  pid: number;
  agents: Record<string, AgentProgress>;
}

export function progressFileOf(pipelineDir: string): string {
  return join(pipelineDir, 'run', 'progress.json');
}

/** The progress file as the leader last wrote it; empty when there is none (nobody leads, or no agent worked). */
export async function readProgressFile(file: string): Promise<ProgressFile> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as ProgressFile;
    if (parsed && typeof parsed === 'object' && parsed.agents && typeof parsed.agents === 'object') return parsed;
  } catch {
    // Missing, or caught in the middle of a rename on a file system without atomic rename.
  }
  return { at: 0, pid: 0, agents: {} };
}

export class ProgressBoard {
  private agents = new Map<string, AgentProgress>();
  private lastWrite = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** A follower's copy: the file's mtime when it was last read. */
  private readMtime = -1;
  private leading = false;

  constructor(
    readonly file: string,
    private readonly events: TypedEvents<PipelineEventMap>,
    private readonly writeIntervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get(agentId: string): AgentProgress | undefined {
    return this.agents.get(agentId);
  }

  all(): Record<string, AgentProgress> {
    return Object.fromEntries([...this.agents].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** The leader's news about one agent: announced at once, written within a second. */
  update(progress: AgentProgress, line?: string): void {
    this.leading = true;
    this.agents.set(progress.agentId, progress);
    this.events.emit('agent:progress', { agentId: progress.agentId, progress, ...(line ? { line } : {}) });
    this.scheduleWrite();
  }

  /** The agent's attempt is over: it has no progress any more. */
  clear(agentId: string): void {
    if (!this.agents.delete(agentId)) return;
    this.events.emit('agent:progress', { agentId, progress: null });
    this.scheduleWrite();
  }

  /**
   * A follower's catch-up: reads the leader's file when it changed. True when something changed.
   * A leader's own board is the truth and is not replaced.
   */
  async refresh(): Promise<boolean> {
    if (this.leading) return false;
    const mtime = await stat(this.file).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (mtime === this.readMtime) return false;
    this.readMtime = mtime;
    const f = await readProgressFile(this.file);
    const next = new Map(Object.entries(f.agents));
    const changed = JSON.stringify([...next]) !== JSON.stringify([...this.agents]);
    this.agents = next;
    return changed;
  }

  private scheduleWrite(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastWrite + this.writeIntervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, wait);
    this.timer.unref();
  }

  private write(): Promise<void> {
    this.lastWrite = this.now();
    const body: ProgressFile = { at: this.lastWrite, pid: process.pid, agents: this.all() };
    this.writing = this.writing
      .then(async () => {
        await mkdir(dirname(this.file), { recursive: true });
        const tmp = `${this.file}.tmp-${process.pid}`;
        await writeFile(tmp, JSON.stringify(body));
        await rename(tmp, this.file);
      })
      .catch(() => undefined);
    return this.writing;
  }

  /** Writes what is pending now (the monitor stopping; tests). */
  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.write();
    }
    await this.writing;
  }

  /** The leader stopped: nothing is in progress any more, for anyone reading the file. */
  async reset(): Promise<void> {
    if (!this.leading) return;
    for (const id of [...this.agents.keys()]) this.clear(id);
    await this.flush();
    this.leading = false;
  }
}
