/**
 * The completion protocol: an agent ends its stage by appending one status line to its task file.
 *
 *   ## Status: COMPLETED ✅
 *   ## Status: BLOCKED ⛔ <reason>
 *   ## Status: CHANGES REQUESTED <what>      (the reviewing stage only)
 *
 * A marker counts only as a whole line outside code fences (the task file itself shows the markers
 * inside a fence, as examples), and only in the task file of the current attempt, so a marker left
 * from an earlier attempt never completes a later one. The last marker in the file wins.
 *
 * Only what the agent appends counts: every task file as written ends with END_OF_TASK_FILE, and
 * markers are read only after its last occurrence. So nothing in the task's own text (a title, a
 * description, a note, a check's output) can complete or block a task, open or close a fence around
 * the agent's marker, or move the file's own examples out of theirs. A file whose end line is gone
 * (rewritten by hand) has no marker: the attempt fails rather than trust text of unknown origin.
 */
export type Marker =
  { kind: 'completed' } | { kind: 'blocked'; reason: string } | { kind: 'changes_requested'; reason: string };

export const COMPLETED_LINE = '## Status: COMPLETED ✅';
export const BLOCKED_PREFIX = '## Status: BLOCKED ⛔';
export const CHANGES_PREFIX = '## Status: CHANGES REQUESTED';

const FENCE = /^\s*(```|~~~)/;

function markerOf(line: string, terminated: boolean): Marker | null {
  const l = line.replace(/\r$/, '').trimEnd();
  if (l === COMPLETED_LINE || l === '## Status: COMPLETED') return { kind: 'completed' };
  // A reason may still be being written on an unterminated last line; wait for its newline.
  if (l.startsWith(BLOCKED_PREFIX) && (terminated || l === BLOCKED_PREFIX))
    return { kind: 'blocked', reason: l.slice(BLOCKED_PREFIX.length).trim() || 'no reason given' };
  if (l.startsWith(CHANGES_PREFIX) && terminated)
    return {
      kind: 'changes_requested',
      reason:
        l
          .slice(CHANGES_PREFIX.length)
          .replace(/^[:\s-]+/, '')
          .trim() || 'no details given',
    };
  return null;
}

/** The last line of every task file as written; the agent appends its status line below it. */
export const END_OF_TASK_FILE = '<!-- pipeline: end of the task file as written; append your status line below -->';

/** The marker the agent appended after the task file as written, or null. */
export function findAppendedMarker(text: string): Marker | null {
  const at = text.lastIndexOf(`\n${END_OF_TASK_FILE}`);
  if (at < 0) return text.startsWith(END_OF_TASK_FILE) ? findMarker(text.slice(END_OF_TASK_FILE.length)) : null;
  return findMarker(text.slice(at + 1 + END_OF_TASK_FILE.length));
}

/** The last marker in `text`, read as whole lines outside code fences. */
export function findMarker(text: string): Marker | null {
  const lines = text.split('\n');
  let inFence = false;
  let found: Marker | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (FENCE.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;
    const terminated = i < lines.length - 1;
    const m = markerOf(line, terminated);
    if (m) found = m;
  }
  return found;
}
