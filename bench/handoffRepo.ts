/**
 * A repository of a realistic size for the handoff benchmark: a few thousand files in a few dozen
 * directories and a few thousand commits on `main`, made once with `git fast-import` (seconds) and
 * kept as a bare repository under bench/results/ (gitignored). Each run clones it (objects are
 * hard-linked, so a clone costs the checkout of the files only). Deterministic: the same content on
 * every machine, so runs compare.
 */
import { execFile, spawn } from 'node:child_process';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RepoShape {
  readonly files: number;
  readonly commits: number;
}

export const REALISTIC: RepoShape = { files: 3000, commits: 3000 };

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) e[k] = v;
  e.GIT_TERMINAL_PROMPT = '0';
  return e;
}

/** A small deterministic generator (mulberry32), so the repository is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pathOf(i: number): string {
  return `src/module-${String(Math.floor(i / 50)).padStart(2, '0')}/file-${String(i % 50).padStart(2, '0')}.ts`;
}

function content(i: number, version: number): string {
  const lines = [`// ${pathOf(i)}, version ${version}`];
  for (let l = 0; l < 20; l++) lines.push(`export const value${l} = ${(i * 31 + l * 7 + version) % 1000};`);
  return `${lines.join('\n')}\n`;
}

/** The fast-import stream: one commit with every file, then commits that each change 1–3 files. */
function* stream(shape: RepoShape): Generator<string> {
  const rnd = random(42);
  const versions = new Array<number>(shape.files).fill(0);
  const blob = (text: string) => `data ${Buffer.byteLength(text)}\n${text}\n`;
  let time = 1_600_000_000;
  for (let c = 0; c < shape.commits; c++) {
    const message = c === 0 ? 'Initial import' : `Change ${c}`;
    let out = `commit refs/heads/main\nauthor Bench <bench@localhost> ${time} +0000\ncommitter Bench <bench@localhost> ${time} +0000\n${blob(message)}`;
    time += 60;
    if (c === 0) {
      out += `M 100644 inline README.md\n${blob('# Handoff benchmark repository\n')}`;
      for (let i = 0; i < shape.files; i++) out += `M 100644 inline ${pathOf(i)}\n${blob(content(i, 0))}`;
    } else {
      const n = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < n; k++) {
        const i = Math.floor(rnd() * shape.files);
        versions[i]!++;
        out += `M 100644 inline ${pathOf(i)}\n${blob(content(i, versions[i]!))}`;
      }
    }
    yield `${out}\n`;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The cached bare repository of `shape` under `cacheDir`, made when missing. */
export async function cachedRepo(cacheDir: string, shape: RepoShape): Promise<string> {
  const bare = join(cacheDir, `handoff-repo-${shape.files}f-${shape.commits}c.git`);
  if (await exists(join(bare, 'HEAD'))) return bare;
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${bare}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', tmp], { env: env() });
  const child = spawn('git', ['fast-import', '--quiet'], {
    cwd: tmp,
    env: env(),
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const done = new Promise<void>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import exited ${code}`)))),
  );
  for (const chunk of stream(shape)) {
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  await done;
  await run('git', ['gc', '--quiet', '--aggressive', '--prune=now'], { cwd: tmp, env: env() });
  await rename(tmp, bare);
  return bare;
}

/** A working clone of the cached repository at `dir`, with a local identity, on `main`. */
export async function cloneRepo(bare: string, dir: string): Promise<void> {
  await run('git', ['clone', '--quiet', bare, dir], { env: env() });
  for (const [k, v] of [
    ['user.name', 'Agent Pipeline'],
    ['user.email', 'agent-pipeline@localhost'],
    ['commit.gpgsign', 'false'],
    // As on a user's machine: git may pack refs and objects in the background during the run.
    ['gc.auto', '6700'],
  ] as const) {
    await run('git', ['config', k, v], { cwd: dir, env: env() });
  }
  await run('git', ['remote', 'remove', 'origin'], { cwd: dir, env: env() });
}
