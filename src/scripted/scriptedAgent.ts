// src/scripted/ — the scripted agent, a program of its own (dist/scriptedAgent.js) for the demo and the
// tests. Main file: this one, the folder's only one. It imports only node built-ins: it runs as an agent
// CLI would, outside the engine.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The scripted agent: a small real program that plays any role for demos and tests. It reads its task
 * file, makes a real commit in its worktree (a design note, a test, an implementation, or a review
 * note), and appends the completion marker. Lines in the task's description steer it:
 *
 *   scripted: fail <stage> [times]        exit 1 without a marker on the first <times> attempts (default 1)
 *   scripted: crash <stage> [times]       same, but by an uncaught error
 *   scripted: exit-clean <stage> [times]  exit 0 without a marker
 *   scripted: block <stage> <reason>      append BLOCKED with the reason
 *   scripted: hang <stage>                never finish (until killed)
 *   scripted: request-changes [times]     as the reviewer, request changes the first <times> reviews
 *   scripted: touch <path>                the implementer also appends a line to <path> (to make conflicts)
 *   scripted: delay <ms>                  work this long before committing (default $SCRIPTED_AGENT_DELAY_MS or 200)
 *
 * It is synchronous on purpose: it is a short-lived command-line program, not library code.
 */

interface Meta {
  task: string;
  stage: string;
  role: string;
  stageAttempt: number;
  reviews: number;
}

function parseMeta(text: string): Meta {
  const m = /<!-- pipeline: (.*?) -->/.exec(text);
  if (!m?.[1]) throw new Error('not a pipeline task file (no metadata line)');
  const kv = Object.fromEntries(m[1].split(' ').map((p) => p.split('=') as [string, string]));
  return {
    task: kv.task ?? '',
    stage: kv.stage ?? '',
    role: kv.role ?? '',
    stageAttempt: Number(kv['stage-attempt'] ?? 1),
    reviews: Number(kv.reviews ?? 0),
  };
}

function directives(text: string): string[][] {
  return [...text.matchAll(/^scripted:\s*(.+)$/gm)].map((m) => (m[1] ?? '').trim().split(/\s+/));
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Scripted Agent', '-c', 'user.email=scripted-agent@localhost', ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  });
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function main(): number {
  const taskFile = process.argv[2];
  if (!taskFile) {
    process.stderr.write('usage: scriptedAgent <task file>\n');
    return 2;
  }
  const text = readFileSync(taskFile, 'utf8');
  const meta = parseMeta(text);
  const cwd = process.cwd();
  const dirs = directives(text);
  const times = (d: string[], i: number) => (d[i] && /^\d+$/.test(d[i]) ? Number(d[i]) : 1);
  const log = (s: string) => process.stdout.write(`[scripted ${meta.role} ${meta.task}] ${s}\n`);

  let delay = Number(process.env.SCRIPTED_AGENT_DELAY_MS ?? 200);
  for (const d of dirs) if (d[0] === 'delay' && d[1]) delay = Number(d[1]);

  for (const d of dirs) {
    const [verb, stage] = d;
    if (stage !== meta.stage && verb !== 'request-changes' && verb !== 'touch' && verb !== 'delay') continue;
    if (verb === 'fail' && meta.stageAttempt <= times(d, 2)) {
      log(`failing as told (attempt ${meta.stageAttempt})`);
      return 1;
    }
    if (verb === 'crash' && meta.stageAttempt <= times(d, 2))
      throw new Error(`crashing as told (attempt ${meta.stageAttempt})`);
    if (verb === 'exit-clean' && meta.stageAttempt <= times(d, 2)) {
      log('exiting without a marker as told');
      return 0;
    }
    if (verb === 'hang') {
      log('hanging as told');
      for (;;) sleep(60_000);
    }
    if (verb === 'block') {
      appendFileSync(taskFile, `\n## Status: BLOCKED ⛔ ${d.slice(2).join(' ') || 'blocked as told'}\n`);
      log('blocked as told');
      return 0;
    }
  }

  sleep(delay);
  const slug = meta.task.toLowerCase();
  const title = (/^# [^:]+: (.*)$/m.exec(text)?.[1] ?? meta.task).trim();
  const write = (rel: string, content: string) => {
    const p = join(cwd, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
    return rel;
  };
  let files: string[] = [];
  switch (meta.role) {
    case 'architect':
      files = [
        write(
          `docs/design/${slug}.md`,
          `# Design: ${title}\n\nApproach for ${meta.task}: a module \`src/${slug}.js\` exporting \`run()\`, covered by \`test/${slug}.test.js\`.\n`,
        ),
      ];
      break;
    case 'tester':
      files = [
        write(
          `test/${slug}.test.js`,
          `const { test } = require('node:test');\nconst assert = require('node:assert');\n\ntest('${meta.task} runs', () => {\n  const { run } = require('../src/${slug}.js');\n  assert.strictEqual(run(), '${meta.task} done');\n});\n`,
        ),
      ];
      break;
    case 'implementer': {
      files = [write(`src/${slug}.js`, `// ${title}\nexports.run = () => '${meta.task} done';\n`)];
      // Rework after a review: answer it with a real change, not a commit of nothing.
      if (meta.reviews > 0) {
        files.push(
          write(
            `test/${slug}.edge-${meta.reviews}.test.js`,
            `const { test } = require('node:test');\nconst assert = require('node:assert');\n\ntest('${meta.task} edge case ${meta.reviews}', () => {\n  assert.strictEqual(typeof require('../src/${slug}.js').run, 'function');\n});\n`,
          ),
        );
      }
      for (const d of dirs) {
        if (d[0] === 'touch' && d[1] && !d[1].includes('..')) {
          const p = join(cwd, d[1]);
          mkdirSync(dirname(p), { recursive: true });
          appendFileSync(p, `${meta.task}: ${title}\n`);
          files.push(d[1]);
        }
      }
      break;
    }
    case 'supervisor': {
      const want = dirs.find((d) => d[0] === 'request-changes');
      if (want && meta.reviews < times(want, 1)) {
        appendFileSync(taskFile, `\n## Status: CHANGES REQUESTED add an edge-case test (review ${meta.reviews + 1})\n`);
        log('requested changes as told');
        return 0;
      }
      files = [
        write(
          `docs/reviews/${slug}.md`,
          `# Review of ${meta.task}\n\nApproved: design, tests and implementation agree.\n`,
        ),
      ];
      break;
    }
    default:
      files = [write(`docs/${meta.role}/${slug}.md`, `# ${meta.role}: ${title}\n`)];
  }
  if (existsSync(join(cwd, '.git'))) {
    git(cwd, ['add', '--', ...files]);
    // A retried stage may rewrite what an earlier attempt already committed; that is not an error.
    if (git(cwd, ['status', '--porcelain', '--', ...files]).trim())
      git(cwd, ['commit', '-q', '-m', `${meta.task} ${meta.stage}: ${title}`]);
  }
  appendFileSync(taskFile, `\n## Status: COMPLETED ✅\n`);
  log(`committed ${files.join(', ')}`);
  return 0;
}

process.exitCode = main();
