import { findNodeAtLocation, parseTree, printParseErrorCode, visit } from 'jsonc-parser/lib/esm/main.js';
import { PipelineError } from '../errors';

/**
 * Places in a JSON file, for error messages: JSON paths (`master.tasks[3].title`) for data of the
 * wrong shape, and line:column for text that is not JSON at all. Used by the import and by
 * `.pipeline/config.json`.
 *
 * Node's `JSON.parse` does not give a usable position: depending on the V8 version the message has
 * "at position N", "(line L column C)" or no position at all ("Unexpected token '}', ... is not valid
 * JSON"). So when it fails, `findJsonProblem` reads the text again with `jsonc-parser` (the VS Code
 * team's parser, comments and trailing commas refused) and turns its first error into a sentence
 * that says what was found and what was expected there. It runs only on failure (and for duplicate
 * keys on small state files), never on the successful path, which stays at native speed.
 *
 * The ESM build is imported by path: the package's `main` is a UMD bundle whose inner `require`s
 * esbuild cannot follow.
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

const PATH_SEGMENT = /\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/y;

/** The inverse of `formatJsonPath`: `master.tasks[3].title` → `["master", "tasks", 3, "title"]`; null if it is none. */
export function parseJsonPath(text: string): Array<string | number> | null {
  const out: Array<string | number> = [];
  PATH_SEGMENT.lastIndex = 0;
  while (PATH_SEGMENT.lastIndex < text.length) {
    const at = PATH_SEGMENT.lastIndex;
    const m = PATH_SEGMENT.exec(text);
    if (!m || (at === 0 && text.startsWith('.'))) return null;
    if (m[1] !== undefined) out.push(m[1]);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[3] !== undefined) out.push(JSON.parse(m[3]) as string);
  }
  return out.length ? out : null;
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

/** Editors on Windows save JSON with a byte-order mark, which `JSON.parse` refuses. */
export function stripByteOrderMark(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export interface JsonProblem {
  offset: number;
  message: string;
  /** For a duplicate key: the JSON path of the object that holds it twice. */
  path?: string;
}

/** What the parser had just read when it stopped, which says what it expected next. */
type Last = 'start' | 'open-object' | 'open-array' | 'property' | 'colon' | 'comma' | 'value';

const PARSE_OPTIONS = { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false };

/**
 * Errors about the characters inside one string or number token, rather than about the grammar.
 * By name: the package declares its codes as a `const enum`, which isolated modules cannot read.
 */
const TOKEN_ERRORS: ReadonlySet<string> = new Set([
  'UnexpectedEndOfString',
  'InvalidCharacter',
  'InvalidEscapeCharacter',
  'InvalidUnicode',
  'UnexpectedEndOfNumber',
]);

const HEX4 = /^[0-9a-fA-F]{4}$/;
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);

/**
 * The first place where `text` stops being JSON (RFC 8259, as `JSON.parse` reads it), or null.
 * With `duplicateKeys`, a key that appears twice in one object is a problem too: `JSON.parse`
 * silently keeps the last one, which would make a duplicated task vanish.
 */
export function findJsonProblem(text: string, opts: { duplicateKeys?: boolean } = {}): JsonProblem | null {
  /** JSON.parse's message when it refuses the text, else null. */
  let refusal: string | null = null;
  try {
    JSON.parse(text);
    if (!opts.duplicateKeys) return null;
  } catch (err) {
    refusal = err instanceof Error ? err.message : 'not JSON';
  }
  let found: JsonProblem | null = null;
  try {
    found = scan(text, opts.duplicateKeys === true);
  } catch (err) {
    // jsonc-parser descends recursively; nesting deeper than the stack allows is not located.
    if (!(err instanceof RangeError)) throw err;
  }
  // JSON.parse is the judge of what is JSON: on text it reads, only a duplicate key is a problem.
  if (refusal === null) return found?.path !== undefined ? found : null;
  if (found) return found;
  // Never "valid" where JSON.parse refuses: V8's own words and place, should the two ever disagree.
  return {
    offset: positionInMessage(refusal) ?? (/end of JSON input/.test(refusal) ? text.length : 0),
    message: refusal,
  };
}

function scan(text: string, duplicateKeys: boolean): JsonProblem | null {
  const n = text.length;
  const shown = (at: number): string => (at >= n ? 'end of file' : JSON.stringify(text[at]));
  const containers: Array<'object' | 'array'> = [];
  const keys: Array<Set<string>> = [];
  let last: Last = 'start';
  let found: JsonProblem | null = null;

  /** What the parser expected at `offset`, given what it had read. */
  const unexpected = (offset: number, state: Last = last): JsonProblem => {
    const top = containers[containers.length - 1];
    const c = text[offset];
    if (state === 'property')
      return { offset, message: `Unexpected ${shown(offset)}: expected ":" after the property name` };
    if (state === 'value') {
      if (!top) return { offset, message: `Unexpected ${shown(offset)} after the end of the JSON value` };
      const close = top === 'object' ? '}' : ']';
      if (offset >= n) return { offset, message: `Unexpected end of file: expected "," or "${close}"` };
      return { offset, message: `Unexpected ${shown(offset)}: expected "," or "${close}"` };
    }
    if (state === 'open-object' || (state === 'comma' && top === 'object')) {
      const hint =
        c === '}' ? ' (a trailing comma is not allowed in JSON)' : c === "'" ? ' (JSON strings use double quotes)' : '';
      return { offset, message: `Unexpected ${shown(offset)}: expected a property name in double quotes${hint}` };
    }
    if (offset >= n) {
      return {
        offset,
        message: top ? 'Unexpected end of file: expected a value' : 'The file is empty: expected a JSON value',
      };
    }
    // A value was expected: a literal with more letters after it is the literal, then a stray letter.
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, offset)) return unexpected(offset + literal.length, 'value');
    }
    if (c === '-')
      return { offset: offset + 1, message: `Invalid number: expected a digit, found ${shown(offset + 1)}` };
    const hint =
      c === ']' ? ' (a trailing comma is not allowed in JSON)' : c === "'" ? ' (JSON strings use double quotes)' : '';
    return { offset, message: `Unexpected ${shown(offset)}: expected a value${hint}` };
  };

  const expectsValue = (): boolean =>
    last === 'start' ||
    last === 'colon' ||
    last === 'open-array' ||
    (last === 'comma' && containers[containers.length - 1] === 'array');
  const expectsKey = (): boolean =>
    last === 'open-object' || (last === 'comma' && containers[containers.length - 1] === 'object');

  /** The first fault inside a string or number token that the parser flagged. */
  const inToken = (code: string, offset: number, length: number): JsonProblem => {
    if (code === 'UnexpectedEndOfNumber') {
      const end = offset + length;
      const what = text[end - 1] === '.' ? 'a digit after "."' : 'a digit in the exponent';
      return { offset: end, message: `Invalid number: expected ${what}, found ${shown(end)}` };
    }
    return stringProblem(text, offset);
  };

  visit(
    text,
    {
      onObjectBegin: () => {
        if (found) return;
        containers.push('object');
        if (duplicateKeys) keys.push(new Set());
        last = 'open-object';
      },
      // The parser also ends a container it could not close (at the end of the file, say) and then
      // reports that; only a real bracket ends one here, so that report sees what was open.
      onObjectEnd: (offset) => {
        if (found || text[offset] !== '}') return;
        containers.pop();
        if (duplicateKeys) keys.pop();
        last = 'value';
      },
      onArrayBegin: () => {
        if (found) return;
        containers.push('array');
        last = 'open-array';
      },
      onArrayEnd: (offset) => {
        if (found || text[offset] !== ']') return;
        containers.pop();
        last = 'value';
      },
      onObjectProperty: (property, offset, _length, _line, _column, pathSupplier) => {
        if (found) return;
        const seen = keys[keys.length - 1];
        if (seen) {
          if (seen.has(property)) {
            found = {
              offset,
              message: `Duplicate key ${JSON.stringify(property)}`,
              path: formatJsonPath(pathSupplier()),
            };
            return;
          }
          seen.add(property);
        }
        last = 'property';
      },
      onLiteralValue: () => {
        if (found) return;
        last = 'value';
      },
      onSeparator: (sep) => {
        if (found) return;
        last = sep === ':' ? 'colon' : 'comma';
      },
      onError: (error, offset, length) => {
        if (found) return;
        const code = printParseErrorCode(error);
        // A faulty string or number where one may stand is that token's fault; anywhere else, the
        // token should not be there at all, whatever is inside it.
        const tokenFault =
          TOKEN_ERRORS.has(code) && (expectsValue() || (expectsKey() && code !== 'UnexpectedEndOfNumber'));
        found = tokenFault ? inToken(code, offset, length) : unexpected(offset);
      },
    },
    PARSE_OPTIONS,
  );
  return found;
}

/** The first fault in the string token starting at `start` (its opening quote). */
function stringProblem(text: string, start: number): JsonProblem {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) break;
    if (c === 0x5c) {
      const e = text[i + 1];
      if (e === 'u') {
        if (!HEX4.test(text.slice(i + 2, i + 6)))
          return { offset: i, message: 'Invalid \\u escape in a string: four hex digits must follow' };
        i += 5;
      } else if (e !== undefined && ESCAPES.has(e)) {
        i++;
      } else {
        return { offset: i, message: `Invalid escape ${JSON.stringify(`\\${e ?? ''}`)} in a string` };
      }
      continue;
    }
    if (c === 0x0a)
      return { offset: start, message: 'Unterminated string (a line break inside a string must be written \\n)' };
    if (c < 0x20) return { offset: i, message: 'Control character in a string (write it as an escape such as \\t)' };
  }
  return { offset: start, message: 'Unterminated string' };
}

/** V8's own offset, when its message has one: the fallback if the parser and V8 ever disagree. */
function positionInMessage(message: string): number | null {
  const m = /at position (\d+)/.exec(message);
  return m?.[1] ? Number(m[1]) : null;
}

/** A syntax error's message and place, for callers that phrase the error their own way. */
export function describeJsonSyntaxError(
  text: string,
  err: unknown,
): { message: string; offset: number; line: number; column: number } {
  const refusal = err instanceof Error ? err.message : 'not JSON';
  const problem = findJsonProblem(text) ?? { offset: positionInMessage(refusal) ?? 0, message: refusal };
  return { message: problem.message, offset: problem.offset, ...lineColumn(text, problem.offset) };
}

/** `JSON.parse` with an error that names the line and column of the first problem. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const { message, line, column } = describeJsonSyntaxError(text, err);
    throw new PipelineError('import', `${file} is not valid JSON: ${message} at line ${line}, column ${column}.`, {
      file,
      where: `${line}:${column}`,
      fix: 'Correct the JSON at that place (an editor with JSON support underlines it), then import again.',
    });
  }
}

/**
 * The line and column of the value at `path` in `text`, for messages about a value of the wrong
 * shape; null when the path is not in the text (a missing key) or the text is not JSON.
 */
export function placeOfPath(text: string, path: JsonPath): { line: number; column: number } | null {
  try {
    const root = parseTree(text, [], PARSE_OPTIONS);
    const node = root ? findNodeAtLocation(root, [...path]) : undefined;
    // For a value inside an object, its property node starts at the key, where an editor would point.
    const at = node?.parent?.type === 'property' ? node.parent : node;
    return at ? lineColumn(text, at.offset) : null;
  } catch (err) {
    if (err instanceof RangeError) return null;
    throw err;
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
