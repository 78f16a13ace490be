// src/webview/ — the metrics panel's page, a browser bundle (media/out/). Main file: this one. It imports
// only the webview protocol's types and uPlot; it runs in the webview, never in Node.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { CostView, HostToPage, InFlightRow, PageToHost } from '../views/webviewProtocol';
import type { MetricsSnapshot } from '../engine/observability/metricsSnapshot';

/**
 * The metrics panel's page. It draws what the host sends: five uPlot charts, what the agents cost
 * (in total, per merged task, by stage) and a table of tasks in flight, in the editor's theme colours (read from VS Code's CSS variables, redrawn when the theme
 * changes). It keeps the last snapshot with setState, so it redraws at once when shown again.
 */
interface VsCodeApi {
  postMessage(m: PageToHost): void;
  getState(): { last?: Extract<HostToPage, { type: 'snapshot' }> } | undefined;
  setState(s: { last?: Extract<HostToPage, { type: 'snapshot' }> }): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;
let charts: uPlot[] = [];
let last: Extract<HostToPage, { type: 'snapshot' }> | undefined = vscode.getState()?.last;

function css(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

function palette(): string[] {
  return [
    '--vscode-charts-blue',
    '--vscode-charts-orange',
    '--vscode-charts-green',
    '--vscode-charts-purple',
    '--vscode-charts-red',
    '--vscode-charts-yellow',
  ].map((v, i) => css(v, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]!));
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function axes(yLabel: string): uPlot.Axis[] {
  const fg = css('--vscode-foreground', '#ccc');
  const grid = css('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)');
  return [
    { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
    { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, label: yLabel, size: 50 },
  ];
}

function chart(
  parent: HTMLElement,
  title: string,
  yLabel: string,
  names: string[],
  data: uPlot.AlignedData,
  opts: { points?: boolean; bars?: boolean } = {},
): void {
  const box = el('section', { class: 'chart', 'aria-label': title });
  box.append(el('h2', {}, title));
  parent.append(box);
  if ((data[0] as number[]).length === 0) {
    box.append(el('p', { class: 'muted' }, 'No data yet.'));
    return;
  }
  const colors = palette();
  // The chart's own box (a grid cell), less its padding: the grid is two or more cells wide, and a
  // chart as wide as the grid was clipped by its cell.
  const width = Math.max(200, Math.min(box.clientWidth - 16, 900));
  const series: uPlot.Series[] = [
    {},
    ...names.map((n, i) => ({
      label: n,
      stroke: colors[i % colors.length],
      width: 2,
      ...(opts.points ? { paths: () => null, points: { show: true, size: 6, fill: colors[i % colors.length] } } : {}),
      ...(opts.bars ? { paths: uPlot.paths.bars?.({ size: [0.6, 40] }), fill: colors[i % colors.length] } : {}),
    })),
  ];
  charts.push(
    new uPlot(
      {
        width,
        height: 170,
        series,
        axes: axes(yLabel),
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.1))] } },
      },
      data,
      box,
    ),
  );
}

function render(msg: Extract<HostToPage, { type: 'snapshot' }>): void {
  for (const c of charts) c.destroy();
  charts = [];
  app.replaceChildren();
  const s: MetricsSnapshot = msg.snapshot;
  const header = el('header');
  const tiles: [string, string][] = [
    ['Tasks done', `${s.tasks.byStatus.done} / ${s.tasks.total}`],
    ['Agents busy', `${s.agents.busy} / ${s.agents.total}`],
    ['Merged', String(s.counters.merged)],
    ['Conflicts', String(s.counters.conflicts)],
    ['Retries', String(s.counters.retries)],
    ['Blocked', String(s.tasks.byStatus.blocked)],
    ['Modes', `${s.modes.orchestration} · ${s.modes.rollout}`],
  ];
  // A snapshot kept by an older page (setState before a reload into a newer build) has no cost.
  const cost = msg.cost as CostView | undefined;
  if (cost) tiles.splice(2, 0, ['Total cost', cost.total], ['Per merged task', cost.perMergedTask]);
  for (const [k, v] of tiles) {
    const t = el('div', { class: 'tile' });
    t.append(el('span', { class: 'label' }, k), el('span', { class: 'value' }, v));
    header.append(t);
  }
  app.append(header);
  if (cost) app.append(costSection(cost));
  const grid = el('div', { class: 'grid' });
  app.append(grid);
  const xs = s.series.map((p) => Math.round(p.t / 1000));
  chart(
    grid,
    'Throughput (per interval)',
    'count',
    ['tasks merged', 'stages completed'],
    [xs, s.series.map((p) => p.merged), s.series.map((p) => p.stagesCompleted)],
    { bars: false },
  );
  chart(grid, 'Queue depth by stage', 'tasks', s.stages, [
    xs,
    ...s.stages.map((st) => s.series.map((p) => p.queueDepth[st] ?? 0)),
  ]);
  chart(
    grid,
    'Agent utilisation',
    '%',
    ['utilisation'],
    [xs, s.series.map((p) => Math.round(p.utilisation * 1000) / 10)],
  );
  const stages = s.recent.stages;
  const sx = stages.map((d) => Math.round(d.at / 1000));
  chart(
    grid,
    'Stage durations (recent)',
    's',
    s.stages,
    [sx, ...s.stages.map((st) => stages.map((d) => (d.stage === st ? d.seconds : null)))],
    { points: true },
  );
  const h = s.recent.handoffs;
  chart(
    grid,
    'Handoff latency (recent)',
    'ms',
    ['marker → next agent'],
    [h.map((d) => Math.round(d.at / 1000)), h.map((d) => Math.round(d.seconds * 1000))],
    { points: true },
  );
  app.append(table(msg.inFlight));
  vscode.postMessage({ type: 'drawn', charts: charts.length, rows: msg.inFlight.length });
}

function costSection(cost: CostView): HTMLElement {
  const box = el('section', { class: 'cost', 'aria-label': 'Cost' });
  box.append(el('h2', {}, `Cost: ${cost.total} (${cost.tokens})`));
  if (cost.byStage.length) {
    const t = el('table');
    const head = el('tr');
    // A figure's heading sits over its figures, to the right like them.
    for (const h of ['Stage', 'Cost', 'Tokens']) head.append(el('th', h === 'Cost' ? { class: 'num' } : {}, h));
    t.append(head);
    for (const r of cost.byStage) {
      const tr = el('tr');
      tr.append(el('td', {}, r.stage), el('td', { class: 'num' }, r.cost), el('td', {}, r.tokens));
      t.append(tr);
    }
    box.append(t);
  } else box.append(el('p', { class: 'muted' }, 'No agent has reported any spending yet.'));
  if (cost.note) box.append(el('p', { class: 'muted' }, cost.note));
  return box;
}

function table(rows: InFlightRow[]): HTMLElement {
  const box = el('section', { class: 'inflight', 'aria-label': 'Tasks in flight' });
  box.append(el('h2', {}, `Tasks in flight (${rows.length})`));
  if (rows.length === 0) {
    box.append(el('p', { class: 'muted' }, 'Nothing in flight.'));
    return box;
  }
  const t = el('table');
  const head = el('tr');
  for (const h of ['Task', 'Title', 'Stage', 'Status', 'Agent', 'For', 'Now', 'Cost'])
    head.append(el('th', h === 'Cost' ? { class: 'num' } : {}, h));
  t.append(head);
  for (const r of rows) {
    const tr = el('tr');
    const link = el('a', { href: '#', title: 'Open the task file' }, r.id);
    link.addEventListener('click', (e) => {
      e.preventDefault();
      vscode.postMessage({ type: 'openTask', requestId: Date.now(), taskId: r.id });
    });
    const id = el('td');
    id.append(link);
    const secs = Math.max(0, Math.round((Date.now() - r.since) / 1000));
    tr.append(
      id,
      el('td', {}, r.title),
      el('td', {}, r.stage),
      el('td', { class: `status ${r.status}` }, r.status),
      el('td', {}, r.agent ?? '—'),
      el('td', {}, secs < 60 ? `${secs}s` : `${Math.floor(secs / 60)}m`),
      el('td', { class: 'step' }, r.step ?? ''),
      el('td', { class: 'num' }, r.cost ?? ''),
    );
    t.append(tr);
  }
  box.append(t);
  return box;
}

window.addEventListener('message', (e: MessageEvent<HostToPage>) => {
  const m = e.data;
  if (m.type === 'snapshot') {
    last = m;
    vscode.setState({ last: m });
    render(m);
  }
});

// The theme changes the body's class; charts take their colours from it, so they are drawn again.
new MutationObserver(() => last && render(last)).observe(document.body, {
  attributes: true,
  attributeFilter: ['class'],
});
window.addEventListener('resize', () => last && render(last));
if (last) render(last);
vscode.postMessage({ type: 'ready' });
