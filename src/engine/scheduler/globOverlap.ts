import picomatch from 'picomatch';

/**
 * Whether two path globs from tasks' `paths` could name a common file. The scheduler uses the answer
 * to keep overlapping tasks out of the conflict stages at the same time, so it must be conservative:
 * a false "overlap" only delays a task, a false "no overlap" lets two agents edit the same file.
 *
 * The test, in order:
 * 1. A negated glob (`!x`) or one with an escape is treated as "anything": we do not try to reason
 *    about complements or escapes.
 * 2. The static prefixes (the leading segments without glob syntax, e.g. `src/engine` of
 *    `src/engine/**\/*.ts`) are compared segment by segment; if they differ at a segment, the two
 *    globs live in disjoint directories and cannot overlap. The comparison ignores case, because
 *    some file systems do.
 * 3. Two literal paths overlap when one is the other or a directory above it.
 * 4. A literal path and a glob overlap when picomatch matches the path, when the glob matches a
 *    directory above the path (a glob may name a directory), or when the path may be a directory
 *    that holds something the glob matches.
 * 5. Two globs with compatible prefixes are taken to overlap: deciding the intersection of two
 *    regular languages exactly is not worth it for this purpose.
 */

interface ParsedGlob {
  /** The glob as given after normalisation (used for picomatch and the caches). */
  readonly text: string;
  /** Leading literal segments, lower-cased for comparison. */
  readonly base: readonly string[];
  /** No glob syntax at all: a file or a directory. */
  readonly literal: boolean;
  /** Matches everything as far as we are concerned (negation, escapes, `..`). */
  readonly anything: boolean;
  /** The segments after the base contain `**`, braces or extglobs, so their count is not fixed. */
  readonly variableDepth: boolean;
  /** All segments of the pattern (base and glob part), meaningful only when !variableDepth. */
  readonly segments: readonly string[];
}

/** Bounded so a long-running engine with ever new globs does not grow without limit. */
const CACHE_LIMIT = 20_000;
const parsedCache = new Map<string, ParsedGlob>();
const matcherCache = new Map<string, (path: string) => boolean>();
const overlapCache = new Map<string, boolean>();

function remember<K, V>(cache: Map<K, V>, key: K, value: V): V {
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, value);
  return value;
}

/** `./src//a/` → `src/a`; an empty result (the repository root) becomes `**`. */
export function normaliseGlob(glob: string): string {
  let g = glob.trim().replace(/\/{2,}/g, '/');
  while (g.startsWith('./')) g = g.slice(2);
  if (g.startsWith('/')) g = g.slice(1);
  while (g.endsWith('/') && g.length > 1) g = g.slice(0, -1);
  if (g === '' || g === '.' || g === '/') return '**';
  return g;
}

export function parseGlob(glob: string): ParsedGlob {
  const cached = parsedCache.get(glob);
  if (cached) return cached;
  const text = normaliseGlob(glob);
  const segments = text.split('/');
  const anything = text.startsWith('!') || text.includes('\\') || segments.includes('..');
  const scanned = picomatch.scan(text);
  const literal = !anything && !scanned.isGlob;
  // picomatch's base is the static directory part; for a literal it is the whole path.
  const baseText = literal ? text : scanned.base;
  const base = anything || baseText === '' ? [] : baseText.split('/').map((s) => s.toLowerCase());
  const globPart = literal ? '' : scanned.glob;
  const variableDepth = anything || globPart.includes('**') || /[{}()]/.test(globPart);
  return remember(parsedCache, glob, { text, base, literal, anything, variableDepth, segments });
}

function matcher(pattern: string): (path: string) => boolean {
  let m = matcherCache.get(pattern);
  if (!m) m = remember(matcherCache, pattern, picomatch(pattern, { dot: true, nocase: true }));
  return m;
}

/** The first segment of the static prefix, lower-cased, or '' when the glob can start anywhere. */
export function globBucket(glob: string): string {
  return parseGlob(glob).base[0] ?? '';
}

export function globsOverlap(a: string, b: string): boolean {
  const key = a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
  const cached = overlapCache.get(key);
  if (cached !== undefined) return cached;
  return remember(overlapCache, key, computeOverlap(parseGlob(a), parseGlob(b)));
}

function computeOverlap(a: ParsedGlob, b: ParsedGlob): boolean {
  if (a.anything || b.anything) return true;
  const common = Math.min(a.base.length, b.base.length);
  for (let i = 0; i < common; i++) if (a.base[i] !== b.base[i]) return false;
  if (a.literal && b.literal) return true;
  if (!a.literal && !b.literal) return true;
  return a.literal ? literalMeetsGlob(a, b) : literalMeetsGlob(b, a);
}

function literalMeetsGlob(lit: ParsedGlob, glob: ParsedGlob): boolean {
  const path = lit.segments;
  // The literal is the glob's base directory or above it: it contains whatever the glob matches.
  if (path.length <= glob.base.length) return true;
  const matches = matcher(glob.text);
  if (matches(lit.text)) return true;
  // The glob may match a directory that holds the literal path.
  for (let depth = glob.base.length + 1; depth < path.length; depth++) {
    if (matches(path.slice(0, depth).join('/'))) return true;
  }
  // The literal may be a directory holding a match: with `**`, braces or extglobs we cannot count
  // segments, so we say yes; otherwise the glob's first segments must match the literal.
  if (glob.variableDepth) return true;
  if (path.length < glob.segments.length) return matcher(glob.segments.slice(0, path.length).join('/'))(lit.text);
  return false;
}

/** The first pair of globs, one from each list, that overlap; null when none do. */
export function firstOverlap(a: readonly string[], b: readonly string[]): [string, string] | null {
  for (const x of a) for (const y of b) if (globsOverlap(x, y)) return [x, y];
  return null;
}
