// Time series on canvas with uPlot: lines, areas and bars over the stats
// buckets. Each chart resizes with its card.

import uPlot from 'uplot';
import { COLORS } from './palette';

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
  kind?: 'line' | 'area' | 'bars';
  /** Join the line across empty buckets (sparse percentiles). */
  spanGaps?: boolean;
}

export interface TimeChartOptions {
  height?: number;
  /** Formats the y axis and the legend values. */
  format: (v: number) => string;
  /** The y range starts at zero (counts, costs, rates). */
  fromZero?: boolean;
  /** Whole-number ticks only (counts). */
  integer?: boolean;
  /** Ends the chart (and its resize observer) when the page goes away. */
  signal?: AbortSignal;
}

const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6];

const barPaths = uPlot.paths.bars!({ size: [0.72, 48], gap: 1 });

/**
 * Draws the chart into el and resolves once its canvas has been painted,
 * so the page can tell a test that its charts are on screen.
 */
export function timeChart(el: HTMLElement, xs: number[], series: Series[], opts: TimeChartOptions): Promise<uPlot> {
  return new Promise((resolve) => {
    const height = opts.height ?? 220;
    let drawn = false;
    const fmt = (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : opts.format(v));
    const chart = new uPlot(
      {
        width: Math.max(el.clientWidth, 240),
        height,
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        legend: { live: true },
        scales: {
          x: { time: true },
          y: {
            range: (_u, min, max) => {
              const lo = opts.fromZero ? 0 : min;
              const hi = max > lo ? max : lo + 1;
              return [lo, hi + (hi - lo) * 0.08];
            },
          },
        },
        axes: [
          { stroke: COLORS.axis, grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.grid } },
          {
            stroke: COLORS.axis,
            grid: { stroke: COLORS.grid, width: 1 },
            ticks: { show: false },
            size: 56,
            incrs: opts.integer ? INTEGER_STEPS : undefined,
            values: (_u, splits) => splits.map((v) => opts.format(v)),
          },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: s.kind === 'bars' ? 0 : 2,
            fill: s.kind === 'bars' ? s.color : s.kind === 'area' ? s.color + '22' : undefined,
            paths: s.kind === 'bars' ? barPaths : undefined,
            points: s.spanGaps ? { show: true, size: 4, fill: s.color } : { show: false },
            spanGaps: s.spanGaps ?? false,
            value: fmt,
          })),
        ],
        hooks: {
          draw: [
            (u: uPlot) => {
              if (!drawn) {
                drawn = true;
                resolve(u);
              }
            },
          ],
        },
      },
      [xs, ...series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    const resize = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 240);
      if (w !== chart.width) chart.setSize({ width: w, height });
    });
    resize.observe(el);
    opts.signal?.addEventListener('abort', () => {
      resize.disconnect();
      chart.destroy();
    });
  });
}
