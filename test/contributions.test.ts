import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMMANDS, CONTEXT, SETTINGS, VIEWS } from '../src/contributions';

/**
 * The ids the code uses (src/contributions.ts) and the ids package.json contributes are the same
 * sets, so a renamed command, setting, view or context key cannot silently stop working.
 */

interface Manifest {
  contributes: {
    commands: { command: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    viewsContainers: { activitybar: { id: string }[] };
    views: Record<string, { id: string }[]>;
    viewsWelcome: { view: string; contents: string; when?: string }[];
    configuration: { properties: Record<string, unknown> };
  };
}

const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as Manifest;
const c = manifest.contributes;
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

void test('every command package.json contributes is in COMMANDS, and the other way round', () => {
  const contributed = c.commands.map((x) => x.command);
  assert.equal(new Set(contributed).size, contributed.length, 'no command is contributed twice');
  assert.deepEqual(sorted(contributed), sorted(Object.values(COMMANDS)));
});

void test('menus and welcome views name only contributed commands', () => {
  const known = new Set<string>(Object.values(COMMANDS));
  for (const [menu, entries] of Object.entries(c.menus))
    for (const e of entries) assert.ok(known.has(e.command), `${menu}: ${e.command}`);
  for (const w of c.viewsWelcome)
    for (const m of w.contents.matchAll(/\(command:([\w.]+)\)/g)) assert.ok(known.has(m[1]!), `viewsWelcome: ${m[1]}`);
  // Every command has its palette entry, so none shows where it cannot work.
  assert.deepEqual(sorted((c.menus.commandPalette ?? []).map((e) => e.command)), sorted(known));
});

void test('VIEWS are the contributed container and views', () => {
  assert.deepEqual(
    c.viewsContainers.activitybar.map((x) => x.id),
    [VIEWS.container],
  );
  assert.deepEqual(Object.keys(c.views), [VIEWS.container]);
  assert.deepEqual(
    c.views[VIEWS.container]!.map((v) => v.id),
    [VIEWS.tasks, VIEWS.agents],
  );
  const views: string[] = [VIEWS.tasks, VIEWS.agents];
  for (const w of c.viewsWelcome) assert.ok(views.includes(w.view), w.view);
});

void test('SETTINGS are the contributed configuration properties', () => {
  const { section, ...keys } = SETTINGS;
  assert.deepEqual(
    sorted(Object.keys(c.configuration.properties)),
    sorted(Object.values(keys).map((k) => `${section}.${k}`)),
  );
});

void test('CONTEXT holds every context key the "when" clauses read, and each is read somewhere', () => {
  const whens = [
    ...Object.values(c.menus).flatMap((entries) => entries.map((e) => e.when ?? '')),
    ...c.viewsWelcome.map((w) => w.when ?? ''),
  ];
  const notKeys = new Set<string>([...Object.values(VIEWS), ...Object.values(COMMANDS)]);
  const read = whens.flatMap((w) => [...w.matchAll(/\bagentPipeline\.[\w.]+/g)].map((m) => m[0]));
  assert.deepEqual(sorted(read.filter((k) => !notKeys.has(k))), sorted(Object.values(CONTEXT)));
});
