import { z } from 'zod';

/**
 * The messages between the engine and its git worker process (see remoteWorkspace.ts): a request
 * names one WorkspacePort method and its arguments; the reply carries the result or the error's
 * code, message and details, so a PipelineError crosses the process boundary intact.
 */
export const WORKSPACE_METHODS = [
  'repair',
  'prepare',
  'commitAll',
  'setAside',
  'priorWork',
  'ensureBranch',
  'merge',
  'deleteMergedBranch',
] as const;
export type WorkspaceMethod = (typeof WORKSPACE_METHODS)[number];

export const workspaceRequestSchema = z.strictObject({
  id: z.number().int(),
  method: z.enum(WORKSPACE_METHODS),
  args: z.array(z.unknown()),
});
export type WorkspaceRequest = z.infer<typeof workspaceRequestSchema>;

export const workspaceReplySchema = z.union([
  z.strictObject({ id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({
    id: z.number().int(),
    ok: z.literal(false),
    error: z.strictObject({
      name: z.string(),
      code: z.string().optional(),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);
export type WorkspaceReply = z.infer<typeof workspaceReplySchema>;
