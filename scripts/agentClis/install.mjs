// Installs the real agent CLIs the tests run, at pinned versions, into `.agent-clis/` (gitignored),
// the way `scripts/testHost/install.mjs` installs the VS Code test host: from the npm registry only,
// with a stamp file that makes a second run a fast no-op. The tests point these CLIs at model
// servers of our own on 127.0.0.1 (test/support/modelServers/); nothing here talks to a vendor.
//
// Aider is a PyPI package, which these machines cannot reach: it is not installed, and its tests say so.
//
// Usable as a script (`node scripts/agentClis/install.mjs [--force]`) and as a module
// (`ensureAgentClis()` resolves to the paths of the binaries).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The pinned versions: bump one here, and the next install redoes the folder. */
export const AGENT_CLIS = {
  claude: { pkg: '@anthropic-ai/claude-code', version: '2.1.332', bin: 'claude' },
  codex: { pkg: '@openai/codex', version: '0.171.0', bin: 'codex' },
  gemini: { pkg: '@google/gemini-cli', version: '0.61.0', bin: 'gemini' },
};

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const agentClisDir = join(repoRoot, '.agent-clis');
const stampFile = join(agentClisDir, 'stamp.json');
const binDir = join(agentClisDir, 'node_modules', '.bin');

function wantedStamp() {
  return {
    clis: Object.fromEntries(Object.entries(AGENT_CLIS).map(([k, v]) => [k, `${v.pkg}@${v.version}`])),
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Where each CLI's binary is once installed. */
export function agentCliPaths() {
  return Object.fromEntries(Object.entries(AGENT_CLIS).map(([k, v]) => [k, join(binDir, v.bin)]));
}

async function current() {
  try {
    const stamp = JSON.parse(await readFile(stampFile, 'utf8'));
    if (JSON.stringify(stamp) !== JSON.stringify(wantedStamp())) return false;
    return Object.values(agentCliPaths()).every((p) => existsSync(p));
  } catch {
    return false;
  }
}

function run(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out.slice(-4000)}`)),
    );
  });
}

/** Installs the pinned CLIs unless the stamp says they are there already; returns their paths. */
export async function ensureAgentClis({ force = false, log = () => {} } = {}) {
  if (!force && (await current())) return agentCliPaths();
  log(
    `installing ${Object.values(AGENT_CLIS)
      .map((v) => `${v.pkg}@${v.version}`)
      .join(', ')} into ${agentClisDir}`,
  );
  await rm(agentClisDir, { recursive: true, force: true });
  await mkdir(agentClisDir, { recursive: true });
  // A package.json of its own, so npm installs here and not into the project.
  await writeFile(join(agentClisDir, 'package.json'), JSON.stringify({ name: 'agent-clis', private: true }, null, 2));
  const specs = Object.values(AGENT_CLIS).map((v) => `${v.pkg}@${v.version}`);
  // Claude Code declares Node >= 22 but its native binary runs under any Node: --engine-strict=false.
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--engine-strict=false', '--no-save', ...specs],
    agentClisDir,
  );
  for (const [name, path] of Object.entries(agentCliPaths())) {
    const version = (await run(path, ['--version'], agentClisDir)).trim();
    log(`${name}: ${version}`);
  }
  await writeFile(stampFile, JSON.stringify(wantedStamp(), null, 2));
  return agentCliPaths();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  ensureAgentClis({ force: process.argv.includes('--force'), log: (m) => console.log(m) }).catch((e) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
