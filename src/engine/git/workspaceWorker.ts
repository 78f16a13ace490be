import { answer } from '../rpc/requestReply';
import { GitWorkspace } from './gitWorkspace';
import { workspaceRequestSchema, type WorkspaceReply } from './workspaceProtocol';

/**
 * The git worker: a small process that owns the git work of one pipeline (worktrees, checkouts,
 * commits, merges) for an engine running inside the editor. Every git command is a new process,
 * and starting a process from the large extension-host process blocks its event loop for longer
 * the larger it is; from here, it blocks nobody. Started by RemoteWorkspace with the repository
 * root and the worktree root as arguments; it ends when its parent disconnects.
 */
async function main(): Promise<void> {
  const [root, worktreeRoot] = process.argv.slice(2);
  if (!root || !worktreeRoot || !process.send) {
    process.stderr.write('usage: gitWorker <repository root> <worktree root> (started by the engine over IPC)\n');
    process.exitCode = 2;
    return;
  }
  const ws = await GitWorkspace.open(root, worktreeRoot);
  const send = (r: WorkspaceReply) => process.send?.(r);
  process.on('message', (raw: unknown) => {
    const parsed = workspaceRequestSchema.safeParse(raw);
    if (!parsed.success) return;
    const { id, method, args } = parsed.data;
    void answer(id, () =>
      (ws as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...args),
    ).then(send);
  });
  process.on('disconnect', () => process.exit(0));
  send({ id: 0, ok: true, result: 'ready' });
}

void main().catch((e: unknown) => {
  process.stderr.write(`git worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
