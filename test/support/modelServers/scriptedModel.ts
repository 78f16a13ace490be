/**
 * The contract between the tests and our local model servers (one per API the agent CLIs speak:
 * Anthropic Messages for Claude Code, OpenAI Responses for Codex, Gemini for Gemini CLI).
 *
 * The CLIs are real; only the model is scripted. A scripted model sees each request of a
 * conversation as a `ModelTurn` (the user's prompt and what its earlier tool calls returned) and
 * answers with one `ModelAction`. Each server renders that action in its API's own streamed format
 * and with its CLI's own tools (a `shell` action is Claude Code's `Bash`, Codex's `exec_command`,
 * Gemini's `run_shell_command`), so the CLI really runs the command, edits the file, commits.
 *
 * Failures are actions too (`error`, `hang`), so the tests can play an expired key, a usage limit
 * with or without a reset time, a server error or a model that never answers.
 */

/** What the model does in one turn. */
export type ModelAction =
  /** Run a shell command in the CLI's working directory (through the CLI's shell tool). */
  | { kind: 'shell'; command: string }
  /** Read a file (the CLI's read tool; a CLI without one gets `cat` through its shell tool). */
  | { kind: 'read'; path: string }
  /** Write a whole file (the CLI's write tool; else a shell here-document). */
  | { kind: 'write'; path: string; content: string }
  /** A final answer: the conversation ends and the CLI exits. */
  | { kind: 'text'; text: string }
  /** An HTTP error answer, exactly as given (status, headers, JSON body). */
  | { kind: 'error'; status: number; headers?: Record<string, string>; body: unknown }
  /** No answer at all: the request is held open until the server closes. */
  | { kind: 'hang' };

/** Token counts a response reports (the CLIs read them from the API's usage fields). */
export interface ModelUsage {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
}

/** One request of a conversation, as the scripted model sees it. */
export interface ModelTurn {
  /** Which server asked: 'anthropic' | 'openai' | 'gemini'. */
  api: ModelApi;
  /** The user's prompt: the first user message's text, with system reminders left out. */
  prompt: string;
  /** What the model's earlier tool calls in this conversation returned, oldest first. */
  toolResults: string[];
  /**
   * Every user prompt of the conversation, oldest first (where the server reads them: Anthropic's).
   * A resumed conversation has the first run's prompt and then the resuming run's.
   */
  prompts?: string[];
  /** Model name the CLI asked for. */
  model: string;
}

export type ModelApi = 'anthropic' | 'openai' | 'gemini';

export interface ModelReply {
  action: ModelAction;
  /** Reported in the response's usage fields; a small default when absent. */
  usage?: ModelUsage;
}

/** A scripted model: a pure function of the conversation so far. */
export type ScriptedModel = (turn: ModelTurn) => ModelReply;

/** One request the server received, for assertions ("the agent ran npm test and committed"). */
export interface ModelRequestRecord {
  api: ModelApi;
  /** Request path, e.g. `/v1/messages?beta=true`. */
  path: string;
  /** Milliseconds since the epoch when it arrived. */
  at: number;
  model: string;
  prompt: string;
  toolResults: string[];
  /** Every user prompt, where the server reads them (see ModelTurn). */
  prompts?: string[];
  /** What the model answered. */
  action: ModelAction;
}

/** A running model server. */
export interface ModelServer {
  /** `http://127.0.0.1:<port>` (each CLI's base-URL setting adds its own path). */
  readonly url: string;
  readonly port: number;
  /** Every request so far, in arrival order. */
  readonly requests: readonly ModelRequestRecord[];
  /** Replaces the scripted model (for a test that changes the script between runs). */
  setModel(model: ScriptedModel): void;
  close(): Promise<void>;
}
