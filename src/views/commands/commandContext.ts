// src/views/commands/ — the commands of the palette, the trees' menus and the status bar, one file per
// feature (pipeline, tasks, agents, review); extension.ts registers them in one loop. Main file: this
// one. It imports the engine, the session (src/host/), the contributed ids and the views it opens.
import * as vscode from 'vscode';
import { PipelineError } from '../../engine/errors';
import type { Pipeline } from '../../engine/pipeline';
import type { Task } from '../../engine/model/schema';
import type { CommandId } from '../../contributions';
import type { PipelineSession } from '../../host/pipelineSession';

/** What every command handler gets: the session, and helpers shared by the command files. */
export interface CommandContext {
  session: PipelineSession;
  extension: vscode.ExtensionContext;
}

export type Handler = (...args: unknown[]) => Promise<unknown>;
export type Handlers = Partial<Record<CommandId, Handler>>;

/** A task id from a tree node, a notification's argument, or a quick pick when called from the palette. */
export async function taskIdFrom(
  p: Pipeline,
  arg: unknown,
  filter: (t: Task) => boolean = () => true,
  placeHolder = 'Choose a task',
): Promise<string | undefined> {
  if (typeof arg === 'string') return arg;
  if (
    arg &&
    typeof arg === 'object' &&
    'id' in arg &&
    typeof arg.id === 'string' &&
    (arg as { kind?: string }).kind !== 'group'
  )
    return (arg as { id: string }).id;
  const tasks = Object.values(p.state.tasks)
    .filter(filter)
    .sort((a, b) => a.seq - b.seq);
  if (tasks.length === 0) throw new PipelineError('unknown-task', 'No task fits that action now.');
  const picked = await vscode.window.showQuickPick(
    tasks.map((t) => ({ label: t.id, description: `${t.status} · ${t.stage}`, detail: t.title })),
    { placeHolder, matchOnDetail: true },
  );
  return picked?.label;
}

export async function agentIdFrom(
  p: Pipeline,
  arg: unknown,
  placeHolder = 'Choose an agent',
): Promise<string | undefined> {
  if (typeof arg === 'string') return arg;
  const agents = Object.values(p.state.agents);
  if (agents.length === 0)
    throw new PipelineError('unknown-agent', 'There are no agents yet.', {
      fix: 'Add one with "Agent Pipeline: Add Agent from a Preset".',
    });
  const picked = await vscode.window.showQuickPick(
    agents.map((a) => ({
      label: a.id,
      description: `${a.role} · ${a.status}${a.current_task ? ` · ${a.current_task}` : ''}`,
    })),
    { placeHolder },
  );
  return picked?.label;
}
