import * as vscode from 'vscode';
import { COMMANDS } from '../contributions';
import type { Agent } from '../engine/model/schema';
import type { SessionView } from './sessionView';
import { agentItemText } from './agentItemText';

/**
 * The Agents tree: each agent with its role, status, current task and time on it, and what a working
 * agent does now and has cost so far, or when a paused one resumes (the words in `agentItemText.ts`).
 * It redraws from the engine's events; while agents work, once a second too, so the time on the
 * task moves and a leading window's progress (news that never reaches the state) shows.
 */
const ICONS: Record<Agent['status'], [string, string?]> = {
  idle: ['person', undefined],
  working: ['sync~spin', 'charts.blue'],
  paused: ['debug-pause', 'charts.yellow'],
  blocked: ['error', 'errorForeground'],
  offline: ['circle-slash', 'disabledForeground'],
};

export class AgentTreeProvider implements vscode.TreeDataProvider<string>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<string | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly session: SessionView) {
    this.sub = session.onDidChange(() => this.emitter.fire(undefined));
    this.timer = setInterval(() => {
      const p = this.session.current;
      if (p && Object.values(p.state.agents).some((a) => a.status === 'working')) this.emitter.fire(undefined);
    }, 1000);
  }

  getChildren(id?: string): string[] {
    const p = this.session.current;
    if (!p || id) return [];
    return Object.keys(p.state.agents).sort();
  }

  getTreeItem(id: string): vscode.TreeItem {
    const a = this.session.current?.state.agents[id];
    const item = new vscode.TreeItem(id, vscode.TreeItemCollapsibleState.None);
    item.id = `agent:${id}`;
    if (!a) return item;
    const [icon, color] = ICONS[a.status];
    item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    const text = agentItemText(
      a,
      this.session.current?.progress.get(id),
      Date.now(),
      this.session.workers?.agent_workers[id],
    );
    item.description = text.description;
    item.tooltip = text.tooltip;
    item.contextValue = `agent.${a.status}`;
    item.command = { command: COMMANDS.openAgentTerminal, title: 'Open Agent Terminal', arguments: [id] };
    return item;
  }

  dispose(): void {
    clearInterval(this.timer);
    this.sub.dispose();
    this.emitter.dispose();
  }
}
