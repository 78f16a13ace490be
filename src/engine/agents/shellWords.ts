import { PipelineError } from '../errors';

/**
 * Words as a POSIX shell reads and quotes them, without a shell: command templates are split once,
 * and commands are shown quoted, so no task text ever passes through a shell.
 */

/** Splits a template into words the way a POSIX shell would (quotes and backslashes), nothing more. */
export function splitWords(template: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && (template[i + 1] === '"' || template[i + 1] === '\\')) cur += template[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < template.length) {
      cur += template[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote)
    throw new PipelineError('usage', `Unterminated ${quote} quote in the command template.`, {
      where: template,
      fix: 'Close the quote.',
    });
  if (inWord) words.push(cur);
  return words;
}

/** Quotes one word for a POSIX shell: plain words stay as they are, others go in single quotes. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
