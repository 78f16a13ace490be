import { Pipeline, type PipelineRole } from '../engine/pipeline';

/**
 * Opens the pipeline for one CLI command. Read-only commands follow (they never contend for the
 * lease); mutating ones lead when nobody does, and otherwise hand their request to the leader.
 */
export async function withPipeline<T>(
  role: PipelineRole,
  label: string,
  fn: (p: Pipeline) => T | Promise<T>,
): Promise<T> {
  const p = await Pipeline.open({ cwd: process.cwd(), role, label });
  try {
    return await fn(p);
  } finally {
    await p.close();
  }
}
