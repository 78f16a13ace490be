/**
 * The scale benchmark's picture: throughput (tasks merged per minute) against the number of agents,
 * measured and ideal, with the budget's 90 % of the ideal, as a standalone SVG written next to the
 * JSON results. Plain SVG text, so it needs no library and opens in any browser or editor.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

export interface ChartRun {
  agents: number;
  merged: number;
  tasks: number;
  throughputPerMin: number;
  idealMeasured: { throughputPerMin: number };
  idealNominal: { throughputPerMin: number };
  ofIdeal: number;
  loadBefore: number[];
  loadAfter: number[];
}

export interface ChartInput {
  at: string;
  tasks: number;
  agentMs: number;
  cores: number;
  budget: { fractionOfIdeal: number };
  runs: ChartRun[];
}

const W = 880;
const H = 480;
const M = { left: 70, right: 240, top: 56, bottom: 92 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round step for about five ticks up to `max`. */
function tickStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
}

export function scaleChartSvg(input: ChartInput): string {
  const runs = [...input.runs].sort((a, b) => a.agents - b.agents);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const maxY =
    Math.max(
      1,
      ...runs.flatMap((r) => [r.throughputPerMin, r.idealMeasured.throughputPerMin, r.idealNominal.throughputPerMin]),
    ) * 1.1;
  const step = tickStep(maxY);
  const top = Math.ceil(maxY / step) * step;
  // Agents on a log-2 axis: 4, 8, 16 equally spaced, as doubling is the question.
  const xs = runs.map((r) => Math.log2(r.agents));
  const xMin = Math.min(...xs) - 0.35;
  const xMax = Math.max(...xs) + 0.35;
  const x = (agents: number) => M.left + ((Math.log2(agents) - xMin) / (xMax - xMin || 1)) * plotW;
  const y = (v: number) => M.top + plotH - (v / top) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="24" font-size="16" font-weight="bold">Throughput against agents: ${input.tasks} tasks, ${input.agentMs} ms a stage</text>`,
    `<text x="${M.left}" y="42" fill="#555">measured: the whole pipeline with real git and processes; ideal: an engine that costs nothing</text>`,
  );
  // Grid and y ticks.
  for (let v = 0; v <= top + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${M.left}" x2="${M.left + plotW}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle" fill="#333">${+v.toFixed(2)}</text>`,
    );
  }
  out.push(
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#333"/>`,
    `<text transform="translate(20 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">tasks merged per minute</text>`,
    `<text x="${M.left + plotW / 2}" y="${M.top + plotH + 40}" text-anchor="middle" fill="#333">agents (one quarter per stage)</text>`,
  );
  for (const r of runs)
    out.push(
      `<text x="${x(r.agents).toFixed(1)}" y="${M.top + plotH + 18}" text-anchor="middle" fill="#333">${r.agents}</text>`,
    );
  const line = (pts: [number, number][], attrs: string) =>
    `<polyline fill="none" ${attrs} points="${pts.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`;
  const dots = (pts: [number, number][], color: string) =>
    pts.map(([a, b]) => `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="4" fill="${color}"/>`).join('');
  // A chart of one run (`--agents 16`) has no line to draw: a short level mark shows its budget and
  // nominal ideal instead.
  const marks = (pts: [number, number][], attrs: string) =>
    pts.length !== 1
      ? ''
      : pts
          .map(
            ([a, b]) =>
              `<line x1="${(x(a) - 14).toFixed(1)}" x2="${(x(a) + 14).toFixed(1)}" y1="${y(b).toFixed(1)}" y2="${y(b).toFixed(1)}" ${attrs}/>`,
          )
          .join('');
  const ideal = runs.map((r) => [r.agents, r.idealMeasured.throughputPerMin] as [number, number]);
  const nominal = runs.map((r) => [r.agents, r.idealNominal.throughputPerMin] as [number, number]);
  const budget = runs.map(
    (r) => [r.agents, r.idealMeasured.throughputPerMin * input.budget.fractionOfIdeal] as [number, number],
  );
  const measured = runs.map((r) => [r.agents, r.throughputPerMin] as [number, number]);
  out.push(
    line(nominal, 'stroke="#999" stroke-width="1.5" stroke-dasharray="2 4"'),
    marks(nominal, 'stroke="#999" stroke-width="1.5" stroke-dasharray="2 4"'),
    line(ideal, 'stroke="#2e7d32" stroke-width="2"'),
    dots(ideal, '#2e7d32'),
    line(budget, 'stroke="#2e7d32" stroke-width="1.5" stroke-dasharray="6 4"'),
    marks(budget, 'stroke="#2e7d32" stroke-width="1.5" stroke-dasharray="6 4"'),
    line(measured, 'stroke="#1565c0" stroke-width="2.5"'),
    dots(measured, '#1565c0'),
  );
  for (const r of runs) {
    const label = `${r.throughputPerMin.toFixed(1)}/min, ${(r.ofIdeal * 100).toFixed(0)} % of ideal${r.merged < r.tasks ? ` (${r.merged}/${r.tasks} merged)` : ''}`;
    out.push(
      `<text x="${(x(r.agents) + 8).toFixed(1)}" y="${(y(r.throughputPerMin) + 16).toFixed(1)}" fill="#1565c0">${esc(label)}</text>`,
    );
  }
  // Legend.
  const lx = M.left + plotW + 18;
  const legend: [string, string][] = [
    ['stroke="#2e7d32" stroke-width="2"', 'ideal (the agents’ measured time)'],
    [
      'stroke="#2e7d32" stroke-width="1.5" stroke-dasharray="6 4"',
      `budget: ${input.budget.fractionOfIdeal * 100} % of ideal`,
    ],
    ['stroke="#999" stroke-width="1.5" stroke-dasharray="2 4"', `ideal (${input.agentMs} ms exactly)`],
    ['stroke="#1565c0" stroke-width="2.5"', 'measured'],
  ];
  legend.forEach(([attrs, text], i) => {
    const ly = M.top + 10 + i * 22;
    out.push(
      `<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" ${attrs}/>`,
      `<text x="${lx + 34}" y="${ly}" dominant-baseline="middle" font-size="11">${esc(text)}</text>`,
    );
  });
  const loads = runs.map((r) => `${r.agents}: ${r.loadBefore[0]!.toFixed(1)}→${r.loadAfter[0]!.toFixed(1)}`).join(', ');
  out.push(
    `<text x="${M.left}" y="${H - 24}" font-size="11" fill="#555">${esc(`${input.cores} cores; load average (1 min) before→after by agents: ${loads}`)}</text>`,
    `<text x="${M.left}" y="${H - 8}" font-size="11" fill="#555">${esc(`bench/scale.bench.ts, ${input.at}`)}</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

export async function writeScaleChart(file: string, input: ChartInput): Promise<void> {
  await writeFile(file, scaleChartSvg(input));
}

/**
 * The same picture as a PNG, drawn by the headless Chromium the VS Code test host uses (Debian's
 * /usr/bin/chromium); where there is none, only the SVG is written and this says why.
 */
export async function writePng(svgFile: string, pngFile: string): Promise<string | undefined> {
  const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
  if (!executablePath) return 'no Chromium at /usr/bin/chromium';
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: W, height: H } });
    await page.goto(pathToFileURL(svgFile).href);
    await page.screenshot({ path: pngFile });
    return undefined;
  } finally {
    await browser.close();
  }
}
