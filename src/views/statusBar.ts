import * as vscode from 'vscode';
import { COMMANDS } from '../contributions';
import type { SessionView } from './sessionView';
import { statusBarText } from './statusBarText';

/**
 * The status-bar indicator: orchestration mode, rollout mode, busy and paused agents and queue
 * length; who leads when another process does (the words in `statusBarText.ts`). Clicking it offers
 * the common actions.
 */
export class PipelineStatusBar implements vscode.Disposable {
  readonly item: vscode.StatusBarItem;
  private readonly sub: vscode.Disposable;
  private warn = false;
  private shown = false;

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
      this.shown = false;
      this.item.hide();
      return;
    }
    const t = statusBarText(p.state, {
      running: this.session.running,
      leader: p.leader && !p.isLeader ? p.leader : null,
    });
    // Each assignment sends the whole item to the window; most state changes leave its words alone.
    if (this.item.text !== t.text) this.item.text = t.text;
    if (this.item.tooltip !== t.tooltip) this.item.tooltip = t.tooltip;
    if (t.warn !== this.warn) {
      this.warn = t.warn;
      this.item.backgroundColor = t.warn ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    }
    if (!this.shown) {
      this.shown = true;
      this.item.show();
    }
  }

  dispose(): void {
    this.sub.dispose();
    this.item.dispose();
  }
}
