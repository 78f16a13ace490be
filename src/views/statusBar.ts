import * as vscode from 'vscode';
import { COMMANDS } from '../contributions';
import type { SessionView } from './sessionView';

/**
 * The status-bar indicator: orchestration mode, rollout mode, busy agents and queue length; who leads
 * when another process does. Clicking it offers the common actions.
 */
export class PipelineStatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly sub: vscode.Disposable;

  constructor(private readonly session: SessionView) {
    this.item = vscode.window.createStatusBarItem('agentPipeline.status', vscode.StatusBarAlignment.Left, 10);
    this.item.name = 'Agent Pipeline';
    this.item.command = COMMANDS.showStatus;
    this.sub = session.onDidChange(() => this.update());
    this.update();
  }

  /** The text shown, exposed for tests. */
  update(): void {
    const p = this.session.current;
    if (!p) {
      this.item.hide();
      return;
    }
    const s = p.state;
    const agents = Object.values(s.agents);
    const busy = agents.filter((a) => a.status === 'working').length;
    const tasks = Object.values(s.tasks);
    // Pending and queued alike: "waiting", the word of the tooltip and the status quick pick (the
    // Tasks tree shows pending tasks apart from queued ones, so "queued" would contradict it).
    const queued = tasks.filter((t) => t.status === 'queued' || t.status === 'pending').length;
    const blocked = tasks.filter((t) => t.status === 'blocked').length;
    const icon = this.session.running ? '$(sync~spin)' : p.leader && !p.isLeader ? '$(eye)' : '$(debug-pause)';
    this.item.text = `${icon} ${s.orchestration_mode} · ${s.mode} · ${busy}/${agents.length} busy · ${queued} waiting${blocked ? ` · $(error) ${blocked}` : ''}`;
    const lines = [
      `Agent Pipeline: ${this.session.running ? 'running in this window' : p.leader && !p.isLeader ? `led by ${p.leader.label} (pid ${p.leader.pid} on ${p.leader.host})` : 'stopped'}`,
      `orchestration ${s.orchestration_mode}${s.pending_switch ? ` (switching to ${s.pending_switch})` : ''}, rollout ${s.mode}`,
      `${busy} of ${agents.length} agents busy, ${queued} tasks waiting, ${blocked} blocked, ${tasks.filter((t) => t.status === 'done').length} done`,
    ];
    this.item.tooltip = lines.join('\n');
    this.item.backgroundColor = blocked ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
