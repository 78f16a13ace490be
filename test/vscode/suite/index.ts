// Entry of the tests that run inside VS Code: the standard test module whose `run()` the workbench
// calls in the extension host (also under @vscode/test-electron). A rejected `run()` is a failed run.
import * as vscode from 'vscode';
import { activationTests } from './activation.test';
import { commandTests } from './commands.test';
import { runTests } from './harness';

export async function run(): Promise<void> {
  const result = await runTests([activationTests, commandTests], (line) => console.log(line), `Agent Pipeline in-host tests, VS Code ${vscode.version}`);
  if (result.failed > 0) throw new Error(`${result.failed} in-host test(s) failed`);
  if (result.passed === 0) throw new Error('no in-host test ran');
}
