/**
 * The agent of the workers benchmark: the project's scripted agent (dist/scriptedAgent.js, as the
 * tests use it; its task's `scripted: delay <ms>` line fixes how long it works), started by a small
 * wrapper that notes three times per attempt in a shared file: when the agent's process started
 * (Node's performance.timeOrigin, before any of its code ran), when its task file was last written
 * (the marker's append is the scripted agent's last write to it: the file's mtime) and when it
 * ended. Every worker runs it on this machine, so the times share one clock.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseTaskFileName } from '../src/engine/agents/taskFile';
import type { AgentMark } from './workersHandoffs';

const WRAPPER = `'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const started = performance.timeOrigin;
const [agent, file, marks] = process.argv.slice(2);
// A stop by the runner ends the scripted agent too (same process group); this one only notes it.
process.on('SIGTERM', () => undefined);
const r = spawnSync(process.execPath, [agent, file], { stdio: 'inherit' });
let marker = null;
try {
  marker = fs.statSync(file).mtimeMs;
} catch {}
fs.appendFileSync(marks, JSON.stringify({ file, started, marker, ended: Date.now() }) + '\\n');
process.exit(r.status === null ? 1 : r.status);
`;

/** Writes the wrapper to `path`; the agents' command template that runs it, noting into `marks`. */
export async function writeBenchAgent(path: string, marks: string): Promise<string> {
  await writeFile(path, WRAPPER);
  return `{node} ${path} {scriptedAgent} {taskFile} ${marks}`;
}

/** The notes of every attempt, by `TASK#attempt`. */
export async function readMarks(marks: string): Promise<Map<string, AgentMark>> {
  const out = new Map<string, AgentMark>();
  const text = await readFile(marks, 'utf8').catch(() => '');
  for (const line of text.split('\n').filter(Boolean)) {
    const m = JSON.parse(line) as { file: string; started: number; marker: number | null; ended: number };
    const id = parseTaskFileName(basename(m.file));
    if (!id || m.marker === null) continue;
    out.set(`${id.taskId}#${id.attempt}`, { ...id, started: m.started, marker: m.marker, ended: m.ended });
  }
  return out;
}

/** The task description that makes the scripted agent work `ms` in every stage. */
export function fixedWork(ms: number): string {
  return `Benchmark task.\n\nscripted: delay ${ms}\n`;
}
