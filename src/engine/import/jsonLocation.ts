import { PipelineError } from '../errors';

/**
 * Places in a JSON file, for error messages: JSON paths (`master.tasks[3].title`) for data of the
 * wrong shape, and line:column for text that is not JSON at all.
 *
 * Node's `JSON.parse` does not give a usable position: depending on the V8 version the message has
 * "at position N", "(line L column C)" or no position at all ("Unexpected token '}', ... is not valid
 * JSON"). So when it fails, `findJsonProblem` scans the text again with a small validator that knows
 * where it stopped and why. It runs only on failure (and for duplicate keys on small state files),
 * never on the successful path, which stays at native speed.
 */

export type JsonPath = ReadonlyArray<string | number>;

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `["master", "tasks", 3, "title"]` → `master.tasks[3].title`; odd keys are quoted: `["a b"]`. */
export function formatJsonPath(path: JsonPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (BARE_KEY.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || '(top level)';
}

/** 1-based line and column (in UTF-16 units, as editors count them) of an offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

export interface JsonProblem {
  offset: number;
  message: string;
  /** For a duplicate key: the JSON path of the object that holds it twice. */
  path?: string;
}

type Frame = { kind: 'object'; keys: Set<string> | null; key: string } | { kind: 'array'; index: number };

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * The first place where `text` stops being JSON (RFC 8259, as `JSON.parse` reads it), or null.
 * With `duplicateKeys`, a key that appears twice in one object is a problem too: `JSON.parse`
 * silently keeps the last one, which would make a duplicated task vanish.
 *
 * Iterative, with an explicit stack, so deeply nested input cannot overflow the call stack.
 */
export function findJsonProblem(text: string, opts: { duplicateKeys?: boolean } = {}): JsonProblem | null {
  const n = text.length;
  const stack: Frame[] = [];
  let i = 0;

  const skipSpace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const shown = (at: number): string => (at >= n ? 'end of file' : JSON.stringify(text[at]));
  const isDigit = (at: number): boolean => {
    const c = text.charCodeAt(at);
    return c >= 0x30 && c <= 0x39;
  };

  /** Reads a string starting at the quote under `i`; builds its value only when asked (keys). */
  const readString = (build: boolean): string | JsonProblem => {
    const start = i;
    i++;
    let out = '';
    let segment = i;
    for (;;) {
      if (i >= n) return { offset: start, message: 'Unterminated string' };
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        if (build) out += text.slice(segment, i);
        i++;
        return out;
      }
      if (c === 0x5c) {
        if (build) out += text.slice(segment, i);
        const e = text[i + 1];
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!HEX4.test(hex))
            return { offset: i, message: 'Invalid \\u escape in a string: four hex digits must follow' };
          if (build) out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e !== undefined && e in ESCAPES) {
          if (build) out += ESCAPES[e];
          i += 2;
        } else {
          return { offset: i, message: `Invalid escape ${JSON.stringify(`\\${e ?? ''}`)} in a string` };
        }
        segment = i;
        continue;
      }
      if (c < 0x20) {
        return c === 0x0a
          ? { offset: start, message: 'Unterminated string (a line break inside a string must be written \\n)' }
          : { offset: i, message: 'Control character in a string (write it as an escape such as \\t)' };
      }
      i++;
    }
  };

  const readNumber = (): JsonProblem | null => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (isDigit(i)) while (isDigit(i)) i++;
    else return { offset: i, message: `Invalid number: expected a digit, found ${shown(i)}` };
    if (text[i] === '.') {
      i++;
      if (!isDigit(i)) return { offset: i, message: `Invalid number: expected a digit after ".", found ${shown(i)}` };
      while (isDigit(i)) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!isDigit(i))
        return { offset: i, message: `Invalid number: expected a digit in the exponent, found ${shown(i)}` };
      while (isDigit(i)) i++;
    }
    return null;
  };

  const pathOf = (frames: Frame[]): string =>
    formatJsonPath(frames.map((f) => (f.kind === 'object' ? f.key : f.index)));

  /** Reads `"key":` in the object on top of the stack, with `i` at the key's quote. */
  const readKey = (top: Extract<Frame, { kind: 'object' }>): JsonProblem | null => {
    skipSpace();
    if (text[i] !== '"') {
      const hint =
        text[i] === '}'
          ? ' (a trailing comma is not allowed in JSON)'
          : text[i] === "'"
            ? ' (JSON strings use double quotes)'
            : '';
      return { offset: i, message: `Unexpected ${shown(i)}: expected a property name in double quotes${hint}` };
    }
    const keyStart = i;
    const key = readString(top.keys !== null);
    if (typeof key !== 'string') return key;
    if (top.keys) {
      if (top.keys.has(key))
        return { offset: keyStart, message: `Duplicate key ${JSON.stringify(key)}`, path: pathOf(stack.slice(0, -1)) };
      top.keys.add(key);
    }
    top.key = key;
    skipSpace();
    if (text[i] !== ':') return { offset: i, message: `Unexpected ${shown(i)}: expected ":" after the property name` };
    i++;
    return null;
  };

  let expectValue = true;
  for (;;) {
    skipSpace();
    if (expectValue) {
      if (i >= n)
        return {
          offset: i,
          message: stack.length
            ? 'Unexpected end of file: expected a value'
            : 'The file is empty: expected a JSON value',
        };
      const c = text[i];
      if (c === '{') {
        i++;
        const frame: Frame = { kind: 'object', keys: opts.duplicateKeys ? new Set() : null, key: '' };
        stack.push(frame);
        skipSpace();
        if (text[i] === '}') {
          i++;
          stack.pop();
          expectValue = false;
        } else {
          const p = readKey(frame);
          if (p) return p;
        }
        continue;
      }
      if (c === '[') {
        i++;
        stack.push({ kind: 'array', index: 0 });
        skipSpace();
        if (text[i] === ']') {
          i++;
          stack.pop();
          expectValue = false;
        }
        continue;
      }
      if (c === '"') {
        const s = readString(false);
        if (typeof s !== 'string') return s;
      } else if (c === '-' || isDigit(i)) {
        const p = readNumber();
        if (p) return p;
      } else if (text.startsWith('true', i)) i += 4;
      else if (text.startsWith('false', i)) i += 5;
      else if (text.startsWith('null', i)) i += 4;
      else {
        const hint =
          c === ']'
            ? ' (a trailing comma is not allowed in JSON)'
            : c === "'"
              ? ' (JSON strings use double quotes)'
              : '';
        return { offset: i, message: `Unexpected ${shown(i)}: expected a value${hint}` };
      }
      expectValue = false;
      continue;
    }

    const top = stack[stack.length - 1];
    if (!top) return i < n ? { offset: i, message: `Unexpected ${shown(i)} after the end of the JSON value` } : null;
    const close = top.kind === 'object' ? '}' : ']';
    if (i >= n) return { offset: i, message: `Unexpected end of file: expected "," or "${close}"` };
    const c = text[i];
    if (c === ',') {
      i++;
      if (top.kind === 'object') {
        const p = readKey(top);
        if (p) return p;
      } else {
        top.index++;
      }
      expectValue = true;
    } else if (c === close) {
      i++;
      stack.pop();
    } else {
      return { offset: i, message: `Unexpected ${shown(i)}: expected "," or "${close}"` };
    }
  }
}

/** V8's own offset, when its message has one: the fallback if the scanner and V8 ever disagree. */
function positionInMessage(err: unknown): number | null {
  const m = err instanceof Error ? /at position (\d+)/.exec(err.message) : null;
  return m?.[1] ? Number(m[1]) : null;
}

/** `JSON.parse` with an error that names the line and column of the first problem. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const problem = findJsonProblem(text) ?? {
      offset: positionInMessage(err) ?? 0,
      message: err instanceof Error ? err.message : String(err),
    };
    const { line, column } = lineColumn(text, problem.offset);
    throw new PipelineError(
      'import',
      `${file} is not valid JSON: ${problem.message} at line ${line}, column ${column}.`,
      {
        file,
        where: `${line}:${column}`,
        fix: 'Correct the JSON at that place (an editor with JSON support underlines it), then import again.',
      },
    );
  }
}

/**
 * Refuses a key that appears twice in one object, which `JSON.parse` accepts by keeping the last:
 * in a state file keyed by task id, that would make a task vanish without a word. A second pass over
 * the text, so it is used where keys are ids (the state), not on large Task Master files.
 */
export function assertNoDuplicateKeys(text: string, file: string): void {
  const dup = findJsonProblem(text, { duplicateKeys: true });
  if (!dup) return;
  const { line, column } = lineColumn(text, dup.offset);
  throw new PipelineError(
    'import',
    `${file} has a duplicate key: ${dup.message} in ${dup.path ?? '(top level)'} at line ${line}, column ${column}; JSON keeps only the last one.`,
    {
      file,
      where: `${line}:${column}`,
      fix: 'Give each entry its own key (for tasks: its own id), then import again.',
    },
  );
}
