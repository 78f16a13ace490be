// Entry of the tests that run inside VS Code: the standard test module whose `run()` the workbench
// calls in the extension host (also under @vscode/test-electron). A rejected `run()` is a failed run.
// The files share one window and run in this order, each leaving the pipeline in the state the next
// one starts from: activation, then agents and tasks added through the engine, then a run of those
// tasks in terminals, then every command.
import * as vscode from 'vscode';
import { activationTests } from './activation.test';
import { commandTests } from './commands.test';
import { runTests } from './harness';
import { pipelineRunTests } from './pipelineRun.test';
import { treeTests } from './trees.test';

export async function run(): Promise<void> {
  const result = await runTests(
    [activationTests, treeTests, pipelineRunTests, commandTests],
    (line) => console.log(line),
    `Agent Pipeline in-host tests, VS Code ${vscode.version}`,
  );
  if (result.failed > 0) throw new Error(`${result.failed} in-host test(s) failed`);
  if (result.passed === 0) throw new Error('no in-host test ran');
}
