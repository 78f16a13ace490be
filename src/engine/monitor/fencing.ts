import type { AgentRunner } from '../ports/agentRunner';
import type { WorkspacePort } from '../ports/workspacePort';

/**
 * Fencing for the side effects the journal cannot fence. The journal refuses a replaced leader's
 * records, but git and agent processes know nothing of epochs: a leader paused past its lease (a
 * SIGSTOP, a suspended laptop) that wakes up mid-launch would check out a branch in a worktree the
 * new leader's agent is using, or start a second agent there. So every git mutation and every agent
 * start checks the lease just before it runs, and is abandoned (with `not-leader`) when it is lost.
 * Reads are not fenced: they change nothing.
 */
export function fencedWorkspace(inner: WorkspacePort, fence: () => Promise<void>): WorkspacePort {
  return {
    worktreePath: (agentId) => inner.worktreePath(agentId),
    priorWork: (taskId, base) => inner.priorWork(taskId, base),
    repair: async (agentIds) => {
      await fence();
      return inner.repair(agentIds);
    },
    prepare: async (agentId, taskId, base) => {
      await fence();
      return inner.prepare(agentId, taskId, base);
    },
    commitAll: async (agentId, message, branch, options) => {
      await fence();
      return inner.commitAll(agentId, message, branch, options);
    },
    setAside: async (agentId, ref, message) => {
      await fence();
      return inner.setAside(agentId, ref, message);
    },
    ensureBranch: async (name, from) => {
      await fence();
      return inner.ensureBranch(name, from);
    },
    merge: async (taskId, into, message) => {
      await fence();
      return inner.merge(taskId, into, message);
    },
    deleteMergedBranch: async (taskId, into) => {
      await fence();
      return inner.deleteMergedBranch(taskId, into);
    },
  };
}

export function fencedRunner(inner: AgentRunner, fence: () => Promise<void>): AgentRunner {
  return {
    kind: inner.kind,
    start: async (req) => {
      await fence();
      return inner.start(req);
    },
    reattach: (req) => inner.reattach(req),
    dispose: () => inner.dispose(),
  };
}
