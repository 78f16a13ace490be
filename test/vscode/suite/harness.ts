// A minimal describe/it runner for the tests that run inside VS Code's extension host (mocha is not
// a dependency). Tests run one after another, each raced against its own time limit. The output is
// TAP-like, one line per test, and ends with the plain `N passed, N failed` line that CI reads.

export interface TestOptions {
  /** Default 20 s. */
  timeoutMs?: number;
}

export interface TestApi {
  describe(name: string, body: () => void): void;
  it(name: string, fn: () => unknown, options?: TestOptions): void;
}

/** A test file exports one of these; it declares its tests on the api it is given. */
export type TestModule = (t: TestApi) => void;

export interface RunResult {
  passed: number;
  failed: number;
}

interface TestCase {
  name: string;
  fn: () => unknown;
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_MS = 20_000;

function collect(modules: readonly TestModule[]): TestCase[] {
  const cases: TestCase[] = [];
  const prefix: string[] = [];
  const api: TestApi = {
    describe(name, body) {
      prefix.push(name);
      try {
        body();
      } finally {
        prefix.pop();
      }
    },
    it(name, fn, options) {
      cases.push({ name: [...prefix, name].join(' › '), fn, timeoutMs: options?.timeoutMs ?? DEFAULT_TIMEOUT_MS });
    },
  };
  for (const register of modules) register(api);
  return cases;
}

async function runOne(test: TestCase): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // Stretched like every wait in the suite (extensionUnderTest.ts): the limit only catches a hang.
    const limitMs = test.timeoutMs * (Number(process.env.TEST_PATIENCE ?? '') || 3);
    timer = setTimeout(() => reject(new Error(`timed out after ${limitMs} ms`)), limitMs);
  });
  try {
    await Promise.race([Promise.resolve().then(test.fn), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
}

export async function runTests(
  modules: readonly TestModule[],
  print: (line: string) => void,
  title: string,
): Promise<RunResult> {
  const cases = collect(modules);
  const result: RunResult = { passed: 0, failed: 0 };
  print(`# ${title}`);
  for (const [index, test] of cases.entries()) {
    const started = Date.now();
    try {
      await runOne(test);
      result.passed++;
      print(`ok ${index + 1} - ${test.name} (${Date.now() - started} ms)`);
    } catch (err) {
      result.failed++;
      print(`not ok ${index + 1} - ${test.name} (${Date.now() - started} ms)`);
      for (const line of describeError(err).split('\n')) print(`  # ${line}`);
    }
  }
  print(`1..${cases.length}`);
  print(`${result.passed} passed, ${result.failed} failed`);
  return result;
}
