// src/engine/rollout/ — `pipeline rollout check`: is the pipeline ready for the next rollout mode. Main
// file: this one. It imports the model, and git facts gathered by rolloutGitFacts.ts (which reads them
// with git/gitRepo.ts for the pipeline's facade).
import { HUMAN_ROLE } from '../model/humanStage';
import type { PipelineConfig } from '../model/configSchema';
import type { PipelineState, RolloutMode } from '../model/schema';

/**
 * `pipeline rollout check`: is the pipeline ready to move to the next rollout mode, and if not, why.
 * shadow → pilot needs a working setup and evidence that the engine decided sensibly in shadow;
 * pilot → production needs pilot work merged, nothing blocked, and the pilot branch promoted.
 * In production the same check reports whether the pipeline is healthy.
 */
export interface GitFacts {
  isRepo: boolean;
  targetExists: boolean;
  /** Commits on the pilot branch that the target branch does not have yet (not promoted). */
  pilotAhead: number | null;
}

export interface RolloutFacts {
  state: PipelineState;
  config: PipelineConfig;
  /** What store recovery reported (truncated or corrupt files moved aside). */
  storeWarnings: readonly string[];
  git: GitFacts | null;
  /** `pipeline doctor`'s findings per agent (null: not checked). */
  agents?: readonly { agent: string; problems: readonly string[] }[] | null;
}

export interface RolloutCheckResult {
  mode: RolloutMode;
  next: RolloutMode | null;
  ready: boolean;
  /** Why it is not ready; empty when ready. */
  reasons: string[];
  /** What was checked and found fine. */
  passed: string[];
}

const NEXT: Record<RolloutMode, RolloutMode | null> = { shadow: 'pilot', pilot: 'production', production: null };

export function rolloutCheck(f: RolloutFacts): RolloutCheckResult {
  const { state, config } = f;
  const reasons: string[] = [];
  const passed: string[] = [];
  const check = (ok: boolean, good: string, bad: string) => (ok ? passed : reasons).push(ok ? good : bad);

  const agents = Object.values(state.agents);
  for (const s of config.stages) {
    // People work human stages: they need no agent.
    if (s.role === HUMAN_ROLE) {
      passed.push(`stage ${s.name} is reviewed by a person`);
      continue;
    }
    const n = agents.filter((a) => a.role === s.role && a.status !== 'offline').length;
    check(
      n > 0,
      `stage ${s.name} has ${n} ${s.role} agent(s)`,
      `stage ${s.name} has no ${s.role} agent: add one with \`pipeline agent add <id> --role ${s.role} --command <preset>\``,
    );
  }
  for (const a of f.agents ?? []) {
    check(a.problems.length === 0, `agent ${a.agent} can run`, `agent ${a.agent}: ${a.problems.join('; ')}`);
  }
  check(
    f.storeWarnings.length === 0,
    'the state recovered cleanly',
    `the state store reported problems at open: ${f.storeWarnings.join('; ')}`,
  );
  if (f.git) {
    check(f.git.isRepo, 'the pipeline is in a git repository', 'the pipeline root is not a git repository');
    check(
      f.git.targetExists,
      `target branch ${config.targetBranch} exists`,
      `target branch ${config.targetBranch} does not exist: create it or set "targetBranch" in .pipeline/config.json`,
    );
  }
  const tasks = Object.values(state.tasks);
  const blocked = tasks.filter((t) => t.status === 'blocked');

  switch (state.mode) {
    case 'shadow': {
      check(
        state.decisions.length > 0,
        `shadow mode recorded ${state.decisions.length} decision(s)`,
        'shadow mode has recorded no decisions yet: run `pipeline run` in shadow mode and review its decisions',
      );
      const pilotTasks = tasks.filter(
        (t) => t.labels.includes(config.pilotLabel) && t.status !== 'done' && t.status !== 'cancelled',
      );
      check(
        pilotTasks.length > 0,
        `${pilotTasks.length} task(s) labelled "${config.pilotLabel}" are ready for the pilot`,
        `no open task is labelled "${config.pilotLabel}": pilot mode runs only those (\`pipeline task add … --label ${config.pilotLabel}\`)`,
      );
      break;
    }
    case 'pilot': {
      const pilot = tasks.filter((t) => t.labels.includes(config.pilotLabel));
      const merged = pilot.filter((t) => t.status === 'done');
      check(merged.length > 0, `${merged.length} pilot task(s) merged`, 'no pilot task has been merged yet');
      const pb = pilot.filter((t) => t.status === 'blocked');
      check(
        pb.length === 0,
        'no pilot task is blocked',
        `pilot task(s) blocked: ${pb.map((t) => `${t.id} (${t.blocked_reason ?? 'no reason'})`).join(', ')}`,
      );
      if (f.git && f.git.pilotAhead !== null) {
        check(
          f.git.pilotAhead === 0,
          `${config.pilotBranch} is promoted into ${config.targetBranch}`,
          `${config.pilotBranch} has ${f.git.pilotAhead} commit(s) not yet in ${config.targetBranch}: review and merge it into ${config.targetBranch} to promote the pilot's work`,
        );
      }
      break;
    }
    case 'production':
      check(
        blocked.length === 0,
        'no task is blocked',
        `task(s) blocked: ${blocked.map((t) => `${t.id} (${t.blocked_reason ?? 'no reason'})`).join(', ')}`,
      );
      break;
  }
  return { mode: state.mode, next: NEXT[state.mode], ready: reasons.length === 0, reasons, passed };
}
