import type { StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import { BLOCKED_PREFIX, CHANGES_PREFIX, COMPLETED_LINE, END_OF_TASK_FILE } from './completionMarker';

/**
 * The task file an agent reads: its role's instructions, the task, what the prerequisites and the
 * earlier stages left, and the completion protocol. One file per attempt
 * (`.pipeline-task/TASK-001.attempt-3.md` in the agent's worktree, kept out of git), so an old
 * attempt's marker cannot complete a new one.
 */
export const TASK_DIR = '.pipeline-task';

export function taskFileName(taskId: string, attempt: number): string {
  return `${taskId}.attempt-${attempt}.md`;
}

/** Parses a task file name back; null for any other file. */
export function parseTaskFileName(name: string): { taskId: string; attempt: number } | null {
  const m = /^([A-Z][A-Z0-9]*-[0-9]+(?:\.[0-9]+)*)\.attempt-([0-9]+)\.md$/.exec(name);
  return m ? { taskId: m[1]!, attempt: Number(m[2]) } : null;
}

/** What each default role is asked to do; a custom role gets a generic instruction. */
export const ROLE_INSTRUCTIONS: Record<string, string> = {
  architect:
    'You are the architect. Design the change this task asks for: write or update a short design note under `docs/design/` (the approach, the files to touch, the interfaces, the risks). Do not implement it. Commit your work on this branch.',
  tester:
    'You are the tester. From the task and the design, write the tests that the implementation must pass. They may fail now; that is expected. Do not implement the feature. Commit your work on this branch.',
  implementer:
    'You are the implementer. Make the tests and the design real: implement the change so the tests pass. Keep the change to what the task asks. Commit your work on this branch.',
  supervisor:
    'You are the supervisor. Review the whole change on this branch against the task: the design, the tests, the implementation. If it is right, approve it (it is merged when you do). If not, request changes and say exactly what must change.',
};

export interface PriorWork {
  /** Commits on the task branch since it left the target, newest first: "sha subject". */
  commits: string[];
  /** Files the branch changed. */
  files: string[];
  /** Notes from the task's history: stage completions, change requests, conflicts. */
  notes: string[];
}

export interface TaskFileInput {
  task: Task;
  stage: StageConfig;
  isLastStage: boolean;
  attempt: number;
  agentId: string;
  targetBranch: string;
  prerequisites: { id: string; title: string; mergedCommit: string | null }[];
  prior: PriorWork;
  /** Output of a failed stage check from the previous attempt, to fix. */
  lastCheckFailure?: string;
  conflictFiles?: string[];
}

export function renderTaskFile(i: TaskFileInput): string {
  const { task, stage } = i;
  const out: string[] = [];
  const reviews = task.history.filter((h) => h.event === 'changes_requested').length;
  // Machine-readable facts for scripted agents and tools; invisible when the file is rendered.
  out.push(
    `<!-- pipeline: task=${task.id} stage=${stage.name} role=${stage.role} attempt=${i.attempt} stage-attempt=${task.failures + 1} reviews=${reviews} -->`,
  );
  out.push(`# ${task.id}: ${task.title}`, '');
  out.push(`- Stage: **${stage.name}** (role: ${stage.role}), attempt ${i.attempt}`);
  out.push(`- Agent: ${i.agentId}`);
  out.push(`- Branch: \`${task.branch}\` (up to date with \`${i.targetBranch}\`)`);
  out.push(`- Priority: ${task.priority}${task.labels.length ? `; labels: ${task.labels.join(', ')}` : ''}`);
  if (task.paths.length) out.push(`- Expected to touch: ${task.paths.map((p) => `\`${p}\``).join(', ')}`);
  out.push(
    '',
    '## Your role',
    '',
    ROLE_INSTRUCTIONS[stage.role] ??
      `You play the role "${stage.role}" in stage "${stage.name}" of this task. Do that stage's work and commit it on this branch.`,
  );
  if (stage.check)
    out.push(
      '',
      `Before you finish, this check must pass in your worktree (it is run for you and its output kept): \`${stage.check}\``,
    );
  out.push('', '## The task', '', task.description.trim() || '(no description beyond the title)');
  if (i.prerequisites.length) {
    out.push('', '## Prerequisites (merged)', '');
    for (const p of i.prerequisites)
      out.push(`- ${p.id}: ${p.title}${p.mergedCommit ? ` (merged as ${p.mergedCommit.slice(0, 10)})` : ''}`);
  }
  if (i.prior.commits.length || i.prior.notes.length) {
    out.push('', '## What the earlier stages left', '');
    for (const c of i.prior.commits) out.push(`- commit ${c}`);
    if (i.prior.files.length) out.push(`- files changed: ${i.prior.files.map((f) => `\`${f}\``).join(', ')}`);
    for (const n of i.prior.notes) out.push(`- ${n}`);
  }
  if (i.conflictFiles?.length) {
    out.push(
      '',
      '## Merge conflict to resolve',
      '',
      `Merging into \`${i.targetBranch}\` conflicted in: ${i.conflictFiles.map((f) => `\`${f}\``).join(', ')}. Bring the branch up to date and resolve them.`,
    );
  }
  if (i.lastCheckFailure)
    out.push('', '## The check failed last time', '', '```', i.lastCheckFailure.slice(-4000), '```');
  out.push(
    '',
    '## When you are done',
    '',
    'Append exactly one of these lines, on a line of its own, at the end of this file:',
    '',
    '```',
  );
  out.push(COMPLETED_LINE);
  out.push(`${BLOCKED_PREFIX} <why you cannot go on>`);
  if (i.isLastStage) out.push(`${CHANGES_PREFIX} <what must change>`);
  out.push('```', '');
  out.push(
    'Only a line outside a code block, below the last line of this file, counts. Commit your work before you write it; anything left uncommitted is committed for you.',
    '',
    END_OF_TASK_FILE,
    '',
  );
  return out.join('\n');
}
