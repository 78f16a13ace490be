import type { Agent } from '../model/schema';

/**
 * The agents by role, with the idle ones of each role kept sorted by id so plans are deterministic
 * (the same state always gives the same assignments, which the journal and the tests rely on).
 */
export class AgentPool {
  private readonly agents = new Map<string, Agent>();
  private readonly idleByRole = new Map<string, string[]>();
  private readonly countByRole = new Map<string, number>();

  get(id: string): Agent | undefined {
    return this.agents.get(id);
  }

  /** `after` undefined removes the agent. The pool trusts its own copy over a caller's `before`. */
  change(id: string, after: Agent | undefined): void {
    const prev = this.agents.get(id);
    if (prev) {
      this.countByRole.set(prev.role, (this.countByRole.get(prev.role) ?? 1) - 1);
      if (prev.status === 'idle') this.removeIdle(prev.role, id);
      this.agents.delete(id);
    }
    if (after) {
      this.agents.set(id, after);
      this.countByRole.set(after.role, (this.countByRole.get(after.role) ?? 0) + 1);
      if (after.status === 'idle') this.addIdle(after.role, id);
    }
  }

  /** Idle agents of `role`, sorted by id. */
  idle(role: string): readonly string[] {
    return this.idleByRole.get(role) ?? [];
  }

  count(role: string): number {
    return this.countByRole.get(role) ?? 0;
  }

  /** For snapshots: the idle agents of every role. */
  idleSnapshot(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [role, ids] of [...this.idleByRole].sort(([a], [b]) => (a < b ? -1 : 1)))
      if (ids.length > 0) out[role] = [...ids];
    return out;
  }

  private addIdle(role: string, id: string): void {
    let list = this.idleByRole.get(role);
    if (!list) this.idleByRole.set(role, (list = []));
    let i = list.length;
    while (i > 0 && (list[i - 1] as string) > id) i--;
    list.splice(i, 0, id);
  }

  private removeIdle(role: string, id: string): void {
    const list = this.idleByRole.get(role);
    const i = list?.indexOf(id) ?? -1;
    if (list && i >= 0) list.splice(i, 1);
  }
}
