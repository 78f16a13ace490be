import * as vscode from 'vscode';
import type { PipelineConfig } from '../engine/model/configSchema';
import type { PipelineState, Task, TaskStatus } from '../engine/model/schema';
import type { SessionView } from './sessionView';
import { awaitingReview } from '../engine/model/humanStage';
import { taskContextValue } from './taskActions';
import { waitsOutLimit } from './taskLimit';
import { taskSpending } from './taskSpending';
import { since } from './timeText';
import { GroupedRowMemory } from './treeRows';

/**
 * The Tasks tree: tasks grouped by where they are (one group per stage, then waiting, merging,
 * blocked, done, cancelled), each with an icon and a description that tell its state at a glance,
 * and its prerequisites as children. It redraws from the engine's events, never by polling, and only
 * what changed: the rows of the tasks that changed, and the groups that gained or lost a task (from
 * the root only when a group appears or goes). Its rows are the same objects from one redraw to the
 * next, since VS Code finds a row to redraw by the object it was given.
 */
type GroupNode = { kind: 'group'; id: string; label: string; tasks: string[] };
type TaskNode = { kind: 'task'; id: string; parent: string };
type PrerequisiteNode = { kind: 'prerequisite'; id: string; of: string };
type Node = GroupNode | TaskNode | PrerequisiteNode;

const ICONS: Record<TaskStatus, [string, string?]> = {
  pending: ['circle-outline', 'disabledForeground'],
  queued: ['clock', 'charts.yellow'],
  working: ['sync~spin', 'charts.blue'],
  merging: ['git-merge', 'charts.purple'],
  blocked: ['error', 'errorForeground'],
  done: ['pass-filled', 'testing.iconPassed'],
  cancelled: ['circle-slash', 'disabledForeground'],
};

/** A task queued at a human stage waits for a person, not for an agent: it looks different. */
const REVIEW_ICON: [string, string] = ['eye', 'charts.orange'];
export const AWAITING_REVIEW = 'awaiting your review';

export function taskIcon(status: TaskStatus, awaitingReview = false): vscode.ThemeIcon {
  const [id, color] = awaitingReview ? REVIEW_ICON : ICONS[status];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

// Kept here for the views that import it from the Tasks tree.
export { since };

export function groupsOf(
  state: PipelineState,
  config: PipelineConfig,
): { id: string; label: string; tasks: string[] }[] {
  const groups = new Map<string, { id: string; label: string; tasks: string[] }>();
  for (const s of config.stages)
    groups.set(`stage:${s.name}`, {
      id: `stage:${s.name}`,
      label: `${s.name[0]!.toUpperCase()}${s.name.slice(1)} (${s.role})`,
      tasks: [],
    });
  const extra: [string, string][] = [
    ['merging', 'Merging'],
    // Pending tasks whose prerequisites are merged (or that have none) wait only for a leader to
    // queue them, which happens when the pipeline runs; the others wait for their prerequisites.
    ['ready', 'Ready to start'],
    ['pending', 'Waiting for prerequisites'],
    ['blocked', 'Blocked'],
    ['done', 'Done'],
    ['cancelled', 'Cancelled'],
  ];
  for (const [id, label] of extra) groups.set(id, { id, label, tasks: [] });
  const tasks = Object.values(state.tasks).sort((a, b) => a.seq - b.seq);
  for (const t of tasks) {
    const ready = t.status === 'pending' && t.prerequisites.every((id) => state.tasks[id]?.status === 'done');
    const key = t.status === 'queued' || t.status === 'working' ? `stage:${t.stage}` : ready ? 'ready' : t.status;
    groups.get(key)?.tasks.push(t.id);
  }
  return [...groups.values()].filter((g) => g.tasks.length > 0);
}

export class TaskTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | Node[] | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;
  /** What the tree last announced, to name what changed since. */
  private readonly memory = new GroupedRowMemory();
  private config: PipelineConfig | undefined;
  /** The rows handed to VS Code, by id: one object per group, task and prerequisite row. */
  private readonly groupNodes = new Map<string, GroupNode>();
  private readonly taskNodes = new Map<string, TaskNode>();
  /** Prerequisite rows by the task they show, then by the task they belong to. */
  private readonly prerequisiteNodes = new Map<string, Map<string, PrerequisiteNode>>();

  constructor(private readonly session: SessionView) {
    this.sub = session.onDidChange(() => this.announce());
  }

  /** Redraws the whole tree. */
  refresh(): void {
    this.memory.clear();
    this.announce();
  }

  /** Tells VS Code which rows changed since the last announcement (nothing when none did). */
  private announce(): void {
    const p = this.session.current;
    if (!p || p.config !== this.config) {
      // Another pipeline or configuration (stages, roles): every row may differ.
      this.memory.clear();
      this.config = p?.config;
    }
    if (!p) {
      this.emitter.fire(undefined);
      return;
    }
    const now = Date.now();
    const groups = this.groupsNow(p);
    const change = this.memory.update(
      groups,
      Object.values(p.state.tasks).map((t) => {
        const review = awaitingReview(t, p.config);
        const description = describeTask(t, now, review);
        return [
          t.id,
          {
            source: t,
            text: `${review}|${description}`,
            // What the task's row and the prerequisite rows that name it show.
            detail: () =>
              JSON.stringify([
                t.title,
                t.status,
                t.prerequisites.length > 0,
                description,
                tooltip(t, review).value,
                taskContextValue(t, review),
                t.assigned_to,
              ]),
          },
        ];
      }),
    );
    // Rows of tasks that are gone (removed) are not asked for again.
    for (const id of this.taskNodes.keys()) if (!p.state.tasks[id]) this.taskNodes.delete(id);
    for (const id of this.prerequisiteNodes.keys()) if (!p.state.tasks[id]) this.prerequisiteNodes.delete(id);
    if (!change) return;
    if (change.all) {
      this.emitter.fire(undefined);
      return;
    }
    const nodes: Node[] = [];
    for (const g of groups) if (change.groups.includes(g.id)) nodes.push(g);
    for (const id of change.rows) {
      const task = this.taskNodes.get(id);
      if (task) nodes.push(task);
      nodes.push(...(this.prerequisiteNodes.get(id)?.values() ?? []));
    }
    if (nodes.length) this.emitter.fire(nodes);
  }

  /** The groups as they are now, as the tree's own group objects (updated in place). */
  private groupsNow(p: { state: PipelineState; config: PipelineConfig }): GroupNode[] {
    return groupsOf(p.state, p.config).map((g) => {
      const node = this.groupNodes.get(g.id) ?? { kind: 'group', id: g.id, label: g.label, tasks: [] };
      node.label = g.label;
      node.tasks = g.tasks;
      this.groupNodes.set(g.id, node);
      return node;
    });
  }

  private taskNode(id: string, parent: string): TaskNode {
    const node = this.taskNodes.get(id) ?? { kind: 'task', id, parent };
    node.parent = parent;
    this.taskNodes.set(id, node);
    return node;
  }

  private prerequisiteNode(id: string, of: string): PrerequisiteNode {
    const byOwner = this.prerequisiteNodes.get(id) ?? new Map<string, PrerequisiteNode>();
    this.prerequisiteNodes.set(id, byOwner);
    const node = byOwner.get(of) ?? { kind: 'prerequisite', id, of };
    byOwner.set(of, node);
    return node;
  }

  getChildren(node?: Node): Node[] {
    const p = this.session.current;
    if (!p) return [];
    const state = p.state;
    if (!node) return this.groupsNow(p);
    if (node.kind === 'group') return node.tasks.map((id) => this.taskNode(id, node.id));
    if (node.kind === 'task')
      return (state.tasks[node.id]?.prerequisites ?? []).map((id) => this.prerequisiteNode(id, node.id));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const p = this.session.current;
    if (node.kind === 'group') {
      const item = new vscode.TreeItem(
        node.label,
        node.id === 'done' || node.id === 'cancelled'
          ? vscode.TreeItemCollapsibleState.Collapsed
          : vscode.TreeItemCollapsibleState.Expanded,
      );
      item.id = `group:${node.id}`;
      item.description = String(node.tasks.length);
      item.contextValue = 'group';
      return item;
    }
    const t = p?.state.tasks[node.id];
    if (!t) return new vscode.TreeItem(node.id);
    const item = new vscode.TreeItem(
      `${t.id}  ${t.title}`,
      node.kind === 'task' && t.prerequisites.length
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None,
    );
    const review = p ? awaitingReview(t, p.config) : false;
    const state = review ? AWAITING_REVIEW : t.status;
    item.id = node.kind === 'task' ? `task:${t.id}` : `prereq:${node.of}:${t.id}`;
    item.iconPath = taskIcon(t.status, review);
    item.description = node.kind === 'prerequisite' ? `prerequisite · ${state}` : describeTask(t, Date.now(), review);
    item.tooltip = tooltip(t, review);
    item.contextValue = node.kind === 'task' ? taskContextValue(t, review) : 'prerequisite';
    item.accessibilityInformation = {
      label: `${t.id} ${t.title}, ${state}${t.assigned_to ? `, ${t.assigned_to}` : ''}`,
    };
    return item;
  }

  getParent(node: Node): Node | undefined {
    if (node.kind === 'group') return undefined;
    const p = this.session.current;
    if (!p) return undefined;
    const owner = node.kind === 'task' ? node.id : node.of;
    const g = this.groupsNow(p).find((x) => x.tasks.includes(owner));
    if (!g) return undefined;
    return node.kind === 'task' ? g : this.taskNode(owner, g.id);
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}

/** `awaitingReview`: the task is queued at a human stage (engine/model/humanStage.ts). */
export function describeTask(t: Task, now = Date.now(), awaitingReview = false): string {
  const parts: string[] = [awaitingReview ? AWAITING_REVIEW : t.status];
  if (t.status === 'working' && t.assigned_to) {
    const assigned = [...t.history].reverse().find((h) => h.event === 'assign');
    parts.push(`${t.assigned_to} ${since(assigned?.at ?? null, now)}`.trim());
  }
  if (waitsOutLimit(t)) parts.push('paused by a usage limit');
  if (t.status === 'queued' && t.not_before && Date.parse(t.not_before) > now)
    parts.push(`retry in ${Math.ceil((Date.parse(t.not_before) - now) / 1000)}s`);
  if (t.status === 'blocked' && t.blocked_reason) parts.push(t.blocked_reason);
  if (t.priority !== 'medium') parts.push(t.priority);
  if (t.attempt > 0 && t.failures > 0) parts.push(`${t.failures} failed`);
  return parts.join(' · ');
}

function tooltip(t: Task, awaitingReview: boolean): vscode.MarkdownString {
  const md = new vscode.MarkdownString(undefined, true);
  md.appendMarkdown(`**${t.id}**: ${escape(t.title)}\n\n`);
  md.appendMarkdown(
    awaitingReview
      ? `$(${REVIEW_ICON[0]}) ${AWAITING_REVIEW} at the ${t.stage} stage: Review shows its changes, with Approve and Request Changes\n\n`
      : `$(${ICONS[t.status][0].replace('~spin', '')}) ${t.status} · stage ${t.stage}${t.assigned_to ? ` · ${t.assigned_to}` : ''}\n\n`,
  );
  md.appendMarkdown(`priority ${t.priority} · attempt ${t.attempt} · branch \`${t.branch}\`\n\n`);
  if (t.prerequisites.length) md.appendMarkdown(`needs ${t.prerequisites.join(', ')}\n\n`);
  if (t.paths.length) md.appendMarkdown(`paths ${t.paths.map((p) => `\`${p}\``).join(', ')}\n\n`);
  if (t.blocked_reason) md.appendMarkdown(`blocked: ${escape(t.blocked_reason)}\n\n`);
  const spent = taskSpending(t);
  if (spent) {
    md.appendMarkdown(`spent ${escape(spent.total)}\n\n`);
    if (spent.byStage) md.appendMarkdown(`by stage: ${escape(spent.byStage)}\n\n`);
    if (spent.unpriced) md.appendMarkdown(`${escape(spent.unpriced)}\n\n`);
  }
  const last = t.history[t.history.length - 1];
  if (last) md.appendMarkdown(`last: ${last.event}${last.note ? ` (${escape(last.note)})` : ''} at ${last.at}`);
  return md;
}

function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, (c) => `\\${c}`);
}
