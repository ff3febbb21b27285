// Horizontal bar charts in SVG for breakdowns (cost by model, by user, …):
// one row per key, the largest first, the tail folded into "other".

import { svg } from '../dom';
import { COLORS } from './palette';

export interface BarItem {
  label: string;
  values: number[];
}

export interface BarChartOptions {
  /** One name and colour per value of an item. */
  series: { name: string; color: string }[];
  format: (v: number) => string;
  maxRows?: number;
}

const WIDTH = 640;
const LABEL_W = 170;
const VALUE_W = 90;
const ROW_H = 30;

export function barChart(items: BarItem[], opts: BarChartOptions): SVGSVGElement {
  const rows = fold(items, opts.maxRows ?? 10);
  const n = opts.series.length;
  const legendH = n > 1 ? 24 : 0;
  const height = legendH + rows.length * ROW_H + 4;
  const max = Math.max(1e-12, ...rows.flatMap((r) => r.values));
  const barArea = WIDTH - LABEL_W - VALUE_W;
  const barH = n > 1 ? 9 : 16;

  const root = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: '100%',
    class: 'bar-chart',
    role: 'img',
    preserveAspectRatio: 'xMinYMin meet',
  });
  if (n > 1) {
    let x = LABEL_W;
    for (const s of opts.series) {
      root.append(svg('rect', { x, y: 6, width: 10, height: 10, rx: 2, fill: s.color }));
      root.append(svg('text', { x: x + 16, y: 15, class: 'legend' }, s.name));
      x += 24 + s.name.length * 7.5;
    }
  }
  rows.forEach((row, i) => {
    const y0 = legendH + i * ROW_H;
    const g = svg('g', { class: 'bar-row', 'data-key': row.label });
    g.append(svg('title', null, `${row.label}: ${row.values.map(opts.format).join(' / ')}`));
    g.append(svg('text', { x: LABEL_W - 10, y: y0 + ROW_H / 2 + 4, 'text-anchor': 'end', class: 'label' }, truncate(row.label || '(none)', 24)));
    const groupH = n * barH + (n - 1) * 2;
    row.values.forEach((v, j) => {
      const w = Math.max(v > 0 ? 2 : 0, (v / max) * barArea);
      const y = y0 + (ROW_H - groupH) / 2 + j * (barH + 2);
      g.append(svg('rect', { x: LABEL_W, y, width: w.toFixed(1), height: barH, rx: 3, fill: opts.series[j].color }));
      if (j === 0 || n > 1) {
        g.append(svg('text', { x: LABEL_W + w + 6, y: y + barH / 2 + 4, class: 'value' }, opts.format(v)));
      }
    });
    root.append(g);
  });
  root.append(svg('line', { x1: LABEL_W, x2: LABEL_W, y1: legendH, y2: height - 2, stroke: COLORS.grid }));
  return root;
}

function fold(items: BarItem[], maxRows: number): BarItem[] {
  if (items.length <= maxRows) return items;
  const head = items.slice(0, maxRows - 1);
  const tail = items.slice(maxRows - 1);
  const sums = tail[0].values.map((_, j) => tail.reduce((s, it) => s + (it.values[j] ?? 0), 0));
  return [...head, { label: `other (${tail.length})`, values: sums }];
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}
