// Entry of the second in-host suite, run in a window with workspace trust on, on a plain git
// repository that VS Code opens in restricted mode (see untrusted.test.ts).
import * as vscode from 'vscode';
import { runTests } from './harness';
import { untrustedTests } from './untrusted.test';

export async function run(): Promise<void> {
  const result = await runTests(
    [untrustedTests],
    (line) => console.log(line),
    `Agent Pipeline in-host tests (untrusted workspace), VS Code ${vscode.version}`,
  );
  if (result.failed > 0) throw new Error(`${result.failed} in-host test(s) failed`);
  if (result.passed === 0) throw new Error('no in-host test ran');
}
