// Entry of the in-host suite whose window runs an interactive Claude Code agent in a terminal
// (interactive.test.ts): the architect stage in Claude Code's own interface, the others scripted.
import * as vscode from 'vscode';
import { runTests } from './harness';
import { interactiveTests } from './interactive.test';

export async function run(): Promise<void> {
  const result = await runTests(
    [interactiveTests],
    (line) => console.log(line),
    `Agent Pipeline in-host tests (an interactive agent), VS Code ${vscode.version}`,
  );
  if (result.failed > 0) throw new Error(`${result.failed} in-host test(s) failed`);
  if (result.passed === 0) throw new Error('no in-host test ran');
}
