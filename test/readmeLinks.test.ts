import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';

/**
 * The README, and every document it links, is read offline (the machines it is written for often have
 * no internet): no link leaves the repository, and every link inside it lands on a file or a heading
 * that exists.
 */

const ROOT = resolve(__dirname, '..');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const out = new Set<string>();
  let fence = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*)$/.exec(line);
    if (m) out.add(slug(m[1]!));
  }
  return out;
}

/** The targets of the Markdown links in `text`, outside code blocks and code spans. */
function links(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g), ...prose.matchAll(/<([a-z][\w+.-]*:[^>\s]+)>/gi)].map(
    (m) => m[1]!,
  );
}

/** README.md and every Markdown file reachable from it by links, as paths relative to the root. */
function documents(): string[] {
  const seen = new Set<string>();
  const queue = ['README.md'];
  while (queue.length) {
    const doc = queue.shift()!;
    if (seen.has(doc)) continue;
    seen.add(doc);
    for (const target of links(readFileSync(join(ROOT, doc), 'utf8'))) {
      const path = target.split('#')[0]!;
      if (!path.endsWith('.md') || /^[a-z][\w+.-]*:/i.test(path)) continue;
      const file = relative(ROOT, resolve(ROOT, dirname(doc), path));
      if (existsSync(join(ROOT, file))) queue.push(file);
    }
  }
  return [...seen];
}

void test('README.md and the documents it links have no link that leaves the repository, and no address on the web', () => {
  const docs = documents();
  assert.ok(docs.includes(join('docs', 'task-import.md')), `documents followed: ${docs.join(', ')}`);
  for (const doc of docs) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const target of links(text)) {
      assert.doesNotMatch(target, /^[a-z][\w+.-]*:/i, `${doc} links to ${target}, outside the repository`);
      const path = target.split('#')[0]!;
      if (!path) continue;
      const file = resolve(ROOT, dirname(doc), path);
      assert.ok(
        file === ROOT || file.startsWith(ROOT + sep),
        `${doc} links to ${target}, which is outside the repository`,
      );
    }
    const web = /\bhttps?:\/\/[^\s)>`'"]+/.exec(text);
    assert.equal(web, null, `${doc} names a web address (${web?.[0]}): describe it, or keep what it says here`);
  }
});

void test('every link in README.md and the documents it links lands on a file or a heading that exists', () => {
  for (const doc of documents()) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const target of links(text)) {
      // An address elsewhere is the test above's failure.
      if (/^[a-z][\w+.-]*:/i.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path ? resolve(ROOT, dirname(doc), path) : join(ROOT, doc);
      assert.ok(existsSync(file), `${doc} links to ${target}: ${relative(ROOT, file)} does not exist`);
      if (anchor && file.endsWith('.md'))
        assert.ok(
          anchors(readFileSync(file, 'utf8')).has(anchor),
          `${doc} links to ${target}: ${relative(ROOT, file)} has no heading #${anchor}`,
        );
    }
  }
});
