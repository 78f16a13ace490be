import { z } from 'zod';
import { replySchema, type Reply } from '../rpc/requestReply';

/**
 * The messages between the engine and its git worker process (see remoteWorkspace.ts): a request
 * names one WorkspacePort method and its arguments; the reply (rpc/requestReply.ts) carries the
 * result or the error's code, message and details, so a PipelineError crosses the process boundary
 * intact.
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

/** Id 0 is the worker's greeting (`ready`); requests count from 1 (rpc/requestReply.ts). */
export const workspaceReplySchema = replySchema(z.number().int());
export type WorkspaceReply = Reply<number>;
