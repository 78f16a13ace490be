import type { ModelAction, ModelReply, ModelTurn, ModelUsage, ScriptedModel } from './scriptedModel';

/**
 * A scripted model that plays one pipeline stage the way a real model would, through the CLI's own
 * tools: it reads the task file named in the prompt, writes the stage's work, runs the project's
 * test command, commits, and appends the completion marker to the task file. A supervisor can be
 * told to request changes on its first review.
 *
 * The task file's first line carries the facts it needs
 * (`<!-- pipeline: task=TASK-001 stage=test role=tester attempt=2 stage-attempt=1 reviews=0 -->`).
 */
export interface StageFacts {
  task: string;
  stage: string;
  role: string;
  attempt: number;
  reviews: number;
}

export interface StageModelOptions {
  /** The project's test command the agent runs before committing (default: `git status --short`). */
  testCommand?: string;
  /** A supervisor's change request for this stage, or null to approve (default: always approve). */
  requestChanges?: (facts: StageFacts) => string | null;
  /** What every response reports as usage. */
  usage?: ModelUsage;
}

const FACTS = /<!-- pipeline: task=(\S+) stage=(\S+) role=(\S+) attempt=(\d+) stage-attempt=\d+ reviews=(\d+) -->/;

/** The task file path the preset's prompt names ("Read the task file <path> and …"). */
export function taskFileOf(prompt: string): string {
  const m = /task file (\S+?)(?:[.,]?\s|$)/.exec(prompt);
  if (!m) throw new Error(`the prompt names no task file: ${prompt.slice(0, 200)}`);
  return m[1]!;
}

export function stageFactsOf(text: string): StageFacts | null {
  const m = FACTS.exec(text);
  if (!m) return null;
  return { task: m[1]!, stage: m[2]!, role: m[3]!, attempt: Number(m[4]), reviews: Number(m[5]) };
}

/** The file each stage writes: one per task and stage, so stages never conflict with each other. */
export function stageWorkFile(f: StageFacts): string {
  return `work/${f.task}/${f.stage}.md`;
}

/** A shell command that appends a completion line below the task file's last line, as its protocol asks. */
export function appendMarker(taskFile: string, line: string): ModelAction {
  return { kind: 'shell', command: `printf '\\n%s\\n' '${line}' >> '${taskFile}'` };
}

export function stageModel(opts: StageModelOptions = {}): ScriptedModel {
  const usage = opts.usage;
  const reply = (action: ModelReply['action']): ModelReply => (usage ? { action, usage } : { action });
  return (turn: ModelTurn): ModelReply => {
    const taskFile = taskFileOf(turn.prompt);
    const step = turn.toolResults.length;
    if (step === 0) return reply({ kind: 'read', path: taskFile });
    const facts = stageFactsOf(turn.toolResults[0] ?? '');
    if (!facts) return reply({ kind: 'text', text: 'I could not read my task file.' });
    const change = facts.role === 'supervisor' ? (opts.requestChanges?.(facts) ?? null) : null;
    switch (step) {
      case 1:
        return reply({
          kind: 'write',
          path: stageWorkFile(facts),
          content: `# ${facts.task} ${facts.stage}\n\nWork of the ${facts.role}, attempt ${facts.attempt}.\n`,
        });
      case 2:
        return reply({ kind: 'shell', command: opts.testCommand ?? 'git status --short' });
      case 3:
        return reply({
          kind: 'shell',
          command: `git add -A && git commit -q -m "${facts.task} ${facts.stage}: ${facts.role}'s work"`,
        });
      case 4:
        return reply(
          appendMarker(taskFile, change ? `## Status: CHANGES REQUESTED ${change}` : '## Status: COMPLETED ✅'),
        );
      default:
        return reply({ kind: 'text', text: change ? `Changes requested: ${change}` : 'Done.' });
    }
  };
}
