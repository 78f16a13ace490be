// Installs the VS Code test host: the VS Code server and web client from the npm package
// `code-server` (these machines reach only the npm registry and Debian's packages, so
// @vscode/test-electron cannot download VS Code), plus Debian's chromium to drive it headless.
// The recipe is the one in shared/vscode-test-host.md. Everything lands in `.test-host/` (gitignored),
// and a stamp file makes a second run a fast no-op. Usable as a script (`node
// scripts/testHost/install.mjs [--force]`) and as a module (`ensureTestHost()`).
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, chmod, mkdir, readFile, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const CODE_SERVER_VERSION = '4.100.3';
/** Bump when the recipe below changes, so existing installs are redone. */
const RECIPE = 1;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const testHostDir = join(repoRoot, '.test-host');
const installDir = join(testHostDir, 'code-server');
const codeServerDir = join(installDir, 'node_modules', 'code-server');
const vscodeDir = join(codeServerDir, 'lib', 'vscode');
const serverMain = join(vscodeDir, 'out', 'server-main.js');
const chromiumPath = '/usr/bin/chromium';
const ripgrepTarget = join(vscodeDir, 'node_modules', '@vscode', 'ripgrep', 'bin', 'rg');
export const stampFile = join(testHostDir, 'stamp.json');
const logFile = join(testHostDir, 'install.log');

/** Native modules of VS Code's server that ship as sources and must be compiled for this Node. */
const NATIVE_MODULES = [
  '@parcel/watcher',
  '@vscode/spdlog',
  'node-pty',
  'native-watchdog',
  '@vscode/deviceid',
  'kerberos',
];

/** Debian packages, each with a file that proves it is installed. */
const APT_PACKAGES = [
  { name: 'chromium', file: chromiumPath },
  { name: 'ripgrep', file: '/usr/bin/rg' },
  { name: 'libkrb5-dev', file: '/usr/include/gssapi/gssapi.h' },
];

/**
 * What the stamp must say for the install to count as current. It also tells the test host library
 * (vscodeHost.ts) where the server and the browser are, relative paths being relative to the stamp.
 */
function wantedStamp() {
  return {
    recipe: RECIPE,
    codeServer: CODE_SERVER_VERSION,
    nodeAbi: process.versions.modules,
    platform: `${process.platform}-${process.arch}`,
    serverMain: relative(testHostDir, serverMain),
    chromium: chromiumPath,
  };
}

async function readStamp() {
  try {
    return JSON.parse(await readFile(stampFile, 'utf8'));
  } catch {
    return undefined;
  }
}

/** True when the stamp matches and the files the runner needs are still there. */
export async function isTestHostInstalled() {
  const stamp = await readStamp();
  const want = wantedStamp();
  const same = stamp !== undefined && Object.entries(want).every(([k, v]) => stamp[k] === v);
  return (
    same &&
    [serverMain, ripgrepTarget, join(vscodeDir, 'node_modules.asar'), ...APT_PACKAGES.map((p) => p.file)].every((f) =>
      existsSync(f),
    )
  );
}

class InstallError extends Error {}

let log;

function say(message) {
  console.log(`[test-host] ${message}`);
  log?.write(`\n[test-host] ${message}\n`);
}

/**
 * Runs a command with its output going to the install log (npm and node-gyp are noisy); on failure
 * the tail of the log is printed. Every command has a time limit.
 */
function run(command, args, { cwd = repoRoot, env = {}, timeoutMs = 10 * 60_000 } = {}) {
  log.write(`\n$ (cd ${cwd} && ${command} ${args.join(' ')})\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (chunk) => {
      log.write(chunk);
      tail = (tail + chunk.toString()).slice(-6000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new InstallError(`could not start ${command}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(tail);
      else
        reject(
          new InstallError(
            `\`${command} ${args.join(' ')}\` in ${cwd} failed (${signal ? `killed by ${signal}` : `exit ${code}`}); last output:\n${tail}\nFull log: ${logFile}`,
          ),
        );
    });
  });
}

async function step(title, fn) {
  const started = Date.now();
  say(`${title} ...`);
  await fn();
  say(`${title}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function ensureAptPackages() {
  const missing = APT_PACKAGES.filter((p) => !existsSync(p.file));
  if (missing.length === 0) {
    say(`Debian packages present: ${APT_PACKAGES.map((p) => p.name).join(', ')}`);
    return;
  }
  const names = missing.map((p) => p.name);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new InstallError(
      `missing Debian packages ${names.join(', ')} and not root: run \`sudo apt-get update && sudo apt-get install -y ${names.join(' ')}\` and try again`,
    );
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await step(`apt-get update`, () => run('apt-get', ['update'], { env }));
  await step(`apt-get install ${names.join(' ')}`, () => run('apt-get', ['install', '-y', ...names], { env }));
  const still = missing.filter((p) => !existsSync(p.file));
  if (still.length > 0)
    throw new InstallError(
      `apt-get installed ${names.join(', ')} but ${still.map((p) => p.file).join(', ')} is still missing`,
    );
}

/**
 * Environment for npm's rebuilds. node-gyp must build against the headers of the Node that runs
 * VS Code's server, which ship with it here (npm's `nodedir` user config says the same, but npm 11
 * warns it will stop honouring unknown user configs, so it is passed explicitly); otherwise it
 * would try to download them. npm 11's install-script policy only warns about unreviewed packages
 * unless `strict-allow-scripts` is set, so that is pinned off for these explicit rebuilds.
 */
function rebuildEnv() {
  const env = { npm_config_yes: 'true', npm_config_strict_allow_scripts: 'false', npm_config_update_notifier: 'false' };
  const nodeDir = dirname(dirname(process.execPath));
  if (existsSync(join(nodeDir, 'include', 'node', 'node.h'))) env.npm_config_nodedir = nodeDir;
  return env;
}

/** Loads each native module in a fresh Node, which proves that it was compiled and links. */
async function verifyNativeModules(cwd, names) {
  const script = `for (const m of ${JSON.stringify(names)}) { try { require(m); } catch (e) { console.error(m + ': ' + e.message); process.exitCode = 1; } }`;
  await run(process.execPath, ['-e', script], { cwd, timeoutMs: 60_000 });
}

async function install() {
  await ensureAptPackages();
  await rm(stampFile, { force: true });
  await mkdir(installDir, { recursive: true });
  const manifest = {
    name: 'agent-pipeline-test-host',
    private: true,
    description: 'VS Code test host, installed by scripts/testHost/install.mjs',
    dependencies: { 'code-server': CODE_SERVER_VERSION },
  };
  await writeFile(join(installDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');

  // code-server's own install scripts refuse root and download ripgrep from GitHub: skip them all
  // and do by hand the few parts that matter.
  await step(`npm install code-server@${CODE_SERVER_VERSION} (scripts skipped)`, () =>
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: installDir }),
  );
  await step('npm rebuild argon2', async () => {
    await run('npm', ['rebuild', 'argon2', '--foreground-scripts'], { cwd: installDir, env: rebuildEnv() });
    await verifyNativeModules(installDir, ['argon2']);
  });
  await step('npm install VS Code server dependencies (lib/vscode, scripts skipped)', () =>
    run('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: vscodeDir }),
  );
  await step('copy Debian ripgrep into @vscode/ripgrep', async () => {
    await mkdir(dirname(ripgrepTarget), { recursive: true });
    await copyFile('/usr/bin/rg', ripgrepTarget);
    await chmod(ripgrepTarget, 0o755);
  });
  await step(`compile native modules (${NATIVE_MODULES.join(', ')})`, async () => {
    await run('npm', ['rebuild', ...NATIVE_MODULES, '--foreground-scripts'], { cwd: vscodeDir, env: rebuildEnv() });
    await verifyNativeModules(vscodeDir, NATIVE_MODULES);
  });
  await step('link node_modules.asar -> node_modules', async () => {
    const link = join(vscodeDir, 'node_modules.asar');
    const present = await lstat(link).then(
      () => true,
      () => false,
    );
    if (!present) await symlink('node_modules', link);
  });
  await writeFile(
    stampFile,
    JSON.stringify({ ...wantedStamp(), installedAt: new Date().toISOString() }, null, 2) + '\n',
  );
}

/**
 * Installs the test host unless the stamp says it is there. Throws an Error with a readable
 * message on failure.
 */
export async function ensureTestHost({ force = false } = {}) {
  if (!force && (await isTestHostInstalled())) {
    say(`VS Code test host (code-server ${CODE_SERVER_VERSION}) already installed in ${testHostDir}`);
    return;
  }
  const started = Date.now();
  await mkdir(testHostDir, { recursive: true });
  log = createWriteStream(logFile, { flags: 'w' });
  say(`installing VS Code test host (code-server ${CODE_SERVER_VERSION}) into ${testHostDir}; log: ${logFile}`);
  try {
    await install();
    say(`installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await new Promise((resolve) => log.end(resolve));
    log = undefined;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await ensureTestHost({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(`[test-host] install FAILED: ${err instanceof InstallError ? err.message : (err?.stack ?? err)}`);
    process.exit(1);
  }
}
