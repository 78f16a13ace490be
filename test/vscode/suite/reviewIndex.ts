// Entry of the in-host suite whose window opens a repository where the supervisor stage is a
// person (role human): a task waits for its review, and the review commands answer (review.test.ts).
import * as vscode from 'vscode';
import { runTests } from './harness';
import { reviewTests } from './review.test';

export async function run(): Promise<void> {
  const result = await runTests(
    [reviewTests],
    (line) => console.log(line),
    `Agent Pipeline in-host tests (a person as the supervisor stage), VS Code ${vscode.version}`,
  );
  if (result.failed > 0) throw new Error(`${result.failed} in-host test(s) failed`);
  if (result.passed === 0) throw new Error('no in-host test ran');
}
