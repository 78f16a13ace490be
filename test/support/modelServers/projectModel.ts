import type { ModelAction, ModelApi, ModelReply, ModelRequestRecord, ModelTurn, ScriptedModel } from './scriptedModel';
import { appendMarker, stageFactsOf, taskFileOf, type StageFacts } from './stageModel';

/**
 * A scripted model that plays each role of the default pipeline on a small Node.js project, the way
 * a real model would and through the CLI's own tools: the architect writes a design note, the tester
 * reads it and writes a test (which fails, as nothing is implemented yet), the implementer writes
 * the code and sees the test pass, the supervisor reads the branch's history and runs the tests
 * before it approves. Each role that changes files commits them itself, and every role appends its
 * completion marker to the task file. `npm test` is `node --test`, so the tests really run.
 *
 * Which role it plays comes from the task file it reads first (its facts line); the prompt names the
 * task file, so one model serves every CLI and every stage at once.
 */

/** The sample project every scenario starts from: no code yet, a test script that runs node's own runner. */
export const SAMPLE_PROJECT: Record<string, string> = {
  'README.md': '# Greetings\n\nA small library of greetings.\n',
  'package.json': `${JSON.stringify({ name: 'greetings', version: '1.0.0', private: true, scripts: { test: 'node --test' } }, null, 2)}\n`,
};

/** What the task asks for: one function, its module and its test. */
export const GREETING_TASK = {
  title: 'Add a greeting',
  description: 'Add `greet(name)` to `src/greet.js`, returning `Hello, <name>!`, with a test under `test/`.',
};

export const DESIGN_FILE = (task: string): string => `docs/design/${task}.md`;
export const TEST_FILE = 'test/greet.test.js';
export const CODE_FILE = 'src/greet.js';

export const TEST_SOURCE = `const test = require('node:test');
const assert = require('node:assert/strict');
const { greet } = require('../src/greet.js');

test('greet says hello to the name it is given', () => {
  assert.equal(greet('Ada'), 'Hello, Ada!');
});
`;

export const CODE_SOURCE = `/** A greeting for \`name\`. */
function greet(name) {
  return \`Hello, \${name}!\`;
}

module.exports = { greet };
`;

export function design(task: string): string {
  return `# ${task}: greet(name)

- \`${CODE_FILE}\` exports \`greet(name)\`, which returns \`Hello, <name>!\`.
- \`${TEST_FILE}\` checks it with node's test runner (\`npm test\`).
- Risk: none beyond the new module; nothing else changes.
`;
}

/** The commit message each role writes (the tests find the commits by it). */
export function commitMessage(f: StageFacts): string {
  return `${f.task} ${f.stage}: ${f.role}'s work`;
}

function commit(f: StageFacts): ModelAction {
  // No -q: git's answer names the new commit, which the tests find again in the repository.
  return { kind: 'shell', command: `git add -A && git commit -m "${commitMessage(f)}"` };
}

/** The steps of a role after it has read its task file, its marker last. */
function stepsOf(f: StageFacts, taskFile: string): ModelAction[] {
  const done = appendMarker(taskFile, '## Status: COMPLETED ✅');
  switch (f.role) {
    case 'architect':
      return [{ kind: 'write', path: DESIGN_FILE(f.task), content: design(f.task) }, commit(f), done];
    case 'tester':
      return [
        { kind: 'read', path: DESIGN_FILE(f.task) },
        { kind: 'write', path: TEST_FILE, content: TEST_SOURCE },
        { kind: 'shell', command: 'npm test' },
        commit(f),
        done,
      ];
    case 'implementer':
      return [
        { kind: 'write', path: CODE_FILE, content: CODE_SOURCE },
        { kind: 'shell', command: 'npm test' },
        commit(f),
        done,
      ];
    case 'supervisor':
      return [
        { kind: 'shell', command: 'git log --format=%s main..HEAD' },
        { kind: 'shell', command: 'npm test' },
        done,
      ];
    default:
      return [appendMarker(taskFile, `## Status: BLOCKED ⛔ no script for the role ${f.role}`)];
  }
}

/** Every call a role's conversation makes, in order, as describeAction gives them. */
export function scriptOf(f: StageFacts, taskFile: string): string[] {
  return [{ kind: 'read' as const, path: taskFile }, ...stepsOf(f, taskFile)].map(describeAction);
}

export function projectModel(): ScriptedModel {
  return (turn: ModelTurn): ModelReply => {
    const taskFile = taskFileOf(turn.prompt);
    const step = turn.toolResults.length;
    if (step === 0) return { action: { kind: 'read', path: taskFile } };
    const facts = stageFactsOf(turn.toolResults[0] ?? '');
    if (!facts) return { action: { kind: 'text', text: 'I could not read my task file.' } };
    const steps = stepsOf(facts, taskFile);
    return { action: steps[step - 1] ?? { kind: 'text', text: `${facts.role}: done.` } };
  };
}

// ------------------------------------------------------------------------------------------------
// Reading the request log back: each tool call with what the CLI returned for it.

/** One tool call the model made, and what the CLI sent back for it in the conversation's next request. */
export interface ToolCall {
  api: ModelApi;
  /** The task file the conversation's prompt names (one per attempt). */
  taskFile: string;
  facts: StageFacts;
  action: ModelAction;
  /** The tool's result as the CLI reported it; undefined when no later request carried it. */
  result: string | undefined;
}

/** The conversation's requests: a Gemini CLI's side questions (its router) are left out. */
function conversationRequests(requests: readonly ModelRequestRecord[]): ModelRequestRecord[] {
  return requests.filter((r) => r.api !== 'gemini' || r.path.includes(':streamGenerateContent'));
}

/**
 * Every tool call of every conversation in the log, in order. Requests belong together by their
 * prompt (it names the attempt's task file); a call made at step k is answered by the k-th tool
 * result of any later request of the same conversation.
 */
export function toolCallsOf(requests: readonly ModelRequestRecord[]): ToolCall[] {
  const byPrompt = new Map<string, ModelRequestRecord[]>();
  for (const r of conversationRequests(requests)) {
    const list = byPrompt.get(r.prompt) ?? [];
    list.push(r);
    byPrompt.set(r.prompt, list);
  }
  const out: ToolCall[] = [];
  for (const [prompt, list] of byPrompt) {
    const facts = list.map((r) => stageFactsOf(r.toolResults[0] ?? '')).find((f) => f !== null);
    if (!facts) continue;
    list.forEach((r, i) => {
      if (r.action.kind !== 'shell' && r.action.kind !== 'read' && r.action.kind !== 'write') return;
      const k = r.toolResults.length;
      const later = list.slice(i + 1).find((l) => l.toolResults.length > k);
      out.push({ api: r.api, taskFile: taskFileOf(prompt), facts, action: r.action, result: later?.toolResults[k] });
    });
  }
  return out;
}

/** A call's shell command, the path it read or wrote, in a word: for messages and matching. */
export function describeAction(a: ModelAction): string {
  switch (a.kind) {
    case 'shell':
      return `shell: ${a.command}`;
    case 'read':
      return `read ${a.path}`;
    case 'write':
      return `write ${a.path}`;
    default:
      return a.kind;
  }
}
