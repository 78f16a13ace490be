import * as vscode from 'vscode';
import { COMMANDS } from '../contributions';
import type { Agent } from '../engine/model/schema';
import type { SessionView } from './sessionView';
import { agentItemText } from './agentItemText';
import { RowMemory } from './treeRows';

/**
 * The Agents tree: each agent with its role, status, current task and time on it, and what a working
 * agent does now and has cost so far, or when a paused one resumes (the words in `agentItemText.ts`).
 * It redraws from the engine's events; while agents work, once a second too, so the time on the
 * task moves and a leading window's progress (news that never reaches the state) shows. Either way
 * only the rows whose words changed redraw (from the root when an agent is added or removed). On a
 * pipeline whose agents run on workers, each row also says which live worker runs it, or that none does.
 */
const ICONS: Record<Agent['status'], [string, string?]> = {
  idle: ['person', undefined],
  working: ['sync~spin', 'charts.blue'],
  paused: ['debug-pause', 'charts.yellow'],
  blocked: ['error', 'errorForeground'],
  offline: ['circle-slash', 'disabledForeground'],
};

export class AgentTreeProvider implements vscode.TreeDataProvider<string>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<string | string[] | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;
  private readonly timer: NodeJS.Timeout;

  /** What each row last showed, to redraw only the rows that changed. */
  private readonly memory = new RowMemory();
  private ids = '';

  constructor(private readonly session: SessionView) {
    this.sub = session.onDidChange(() => this.announce());
    this.timer = setInterval(() => {
      const p = this.session.current;
      if (p && Object.values(p.state.agents).some((a) => a.status === 'working')) this.announce();
    }, 1000);
  }

  /** Tells VS Code which rows changed since the last announcement (nothing when none did). */
  private announce(): void {
    const p = this.session.current;
    const agents = p ? Object.values(p.state.agents).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : [];
    const now = Date.now();
    const changed = this.memory.update(
      agents.map((a) => {
        const text = agentItemText(a, p?.progress.get(a.id), now, this.session.workers?.agent_workers[a.id]);
        // The words say everything the row shows (its icon and menus follow the status, which they
        // name), so a state read again, with new but equal agents, redraws nothing.
        return [a.id, { source: null, text: `${text.description}\n${text.tooltip}` }];
      }),
    );
    const joined = agents.map((a) => a.id).join('\n');
    if (joined !== this.ids) {
      this.ids = joined;
      this.emitter.fire(undefined);
    } else if (changed.length) this.emitter.fire(changed);
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
