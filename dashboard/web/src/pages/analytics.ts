// Analytics over a range: headline numbers, time series (volume, cost,
// errors, latency, TTFT, tokens, cache) and cost breakdowns. The page sets
// data-charts-drawn="N" once its N charts are painted.

import { getJSON } from '../api';
import { barChart } from '../charts/bars';
import { COLORS } from '../charts/palette';
import { Series, timeChart } from '../charts/timeseries';
import { h } from '../dom';
import { apiFilters, filterBar, labelled, resolveRange, rfc3339, suggest } from '../filters';
import { fmtCompact, fmtCost, fmtInt, fmtMs, fmtPct } from '../format';
import { go, link, Route } from '../router';
import type { Bucket, Group, Stats } from '../types';
import { kpi, loading, notice, pageHeader } from '../ui';

// Bucket sizes that read well on an axis; the page aims at ~48 buckets.
const BUCKETS = [60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400];

export async function renderAnalytics(view: HTMLElement, route: Route, signal: AbortSignal): Promise<void> {
  const params = route.params;
  const range = resolveRange(params, false);
  const to = range.to ?? new Date();
  const from = range.from ?? new Date(to.getTime() - 86400_000);
  const span = (to.getTime() - from.getTime()) / 1000;
  const bucket = BUCKETS.find((b) => span / b <= 60) ?? 30 * 86400;
  const group = (params.get('group') ?? '').trim().toLowerCase();

  const groupInput = h('input', { type: 'text', name: 'group', value: group, placeholder: 'e.g. team', spellcheck: 'false', autocomplete: 'off' });
  const bar = filterBar(params, {
    allowAll: false,
    onApply: (p) => go(link('analytics', '', p)),
    extra: [labelled('Cost by property', groupInput)],
  });
  const body = h('div', null, loading('statistics'));
  view.append(pageHeader('Analytics'), bar, body);

  const q = apiFilters(params, { from, to });
  q.set('to', rfc3339(to));
  q.set('bucket', String(bucket));
  if (group) q.set('group_property', group);
  const st = await getJSON<Stats>('/v1/stats?' + q, signal);
  suggest(bar, 'dl-model', st.by_model.map((g) => g.key));
  suggest(bar, 'dl-user', st.by_user.map((g) => g.key));

  if (!st.requests) {
    body.replaceChildren(notice('No requests in this range.', 'empty', { 'data-empty': '' }));
    view.setAttribute('data-charts-drawn', '0');
    return;
  }
  const grid = h('div', { class: 'chart-grid' });
  body.replaceChildren(headline(st), grid);
  const drawn = await drawCharts(grid, st, bucket, from, to, group, signal);
  if (!signal.aborted) view.setAttribute('data-charts-drawn', String(drawn));
}

function headline(st: Stats): HTMLElement {
  return h(
    'div',
    { class: 'kpis', 'data-kpis': '' },
    kpi('Requests', fmtInt(st.requests), `${fmtInt(st.errors)} errors`),
    kpi('Cost', fmtCost(st.cost_usd)),
    kpi('Error rate', fmtPct(st.error_rate)),
    kpi('Cache hit rate', fmtPct(st.cache_hit_rate), `${fmtInt(st.cache_hits)} hits · ${fmtCost(st.cost_saved_usd)} saved`),
    ...semanticKPI(st),
    kpi('Tokens in / out', `${fmtCompact(st.prompt_tokens)} / ${fmtCompact(st.completion_tokens)}`),
    kpi('Latency p50', fmtMs(st.latency_ms.p50), `p95 ${fmtMs(st.latency_ms.p95)} · p99 ${fmtMs(st.latency_ms.p99)}`),
    kpi('TTFT p50', st.ttft_ms.p50 ? fmtMs(st.ttft_ms.p50) : '—', st.ttft_ms.p50 ? `p95 ${fmtMs(st.ttft_ms.p95)} · p99 ${fmtMs(st.ttft_ms.p99)}` : 'no streamed calls'),
  );
}

/** Exact and semantic cache hits apart, when the server splits them. */
function semanticKPI(st: Stats): HTMLElement[] {
  if (st.semantic_cost_saved_usd === undefined || st.exact_cost_saved_usd === undefined) return [];
  const semantic = st.semantic_cache_hits ?? 0;
  return [
    kpi(
      'Cache savings',
      `${fmtCost(st.exact_cost_saved_usd)} exact · ${fmtCost(st.semantic_cost_saved_usd)} semantic`,
      `${fmtInt(st.cache_hits - semantic)} exact hits · ${fmtInt(semantic)} semantic hits`,
      { 'data-cache-savings': '' },
    ),
  ];
}

/** One bucket per step from the range's start, empty buckets included. */
function timeline(volume: Bucket[], bucket: number, from: Date, to: Date): { xs: number[]; at: (Bucket | null)[] } {
  const byStart = new Map(volume.map((b) => [Math.floor(Date.parse(b.start) / 1000), b]));
  const xs: number[] = [];
  const at: (Bucket | null)[] = [];
  const end = to.getTime() / 1000;
  for (let t = Math.floor(from.getTime() / 1000 / bucket) * bucket; t < end; t += bucket) {
    xs.push(t);
    at.push(byStart.get(t) ?? null);
  }
  return { xs, at };
}

interface ChartCard {
  title: string;
  note?: string;
  wide?: boolean;
  draw: (el: HTMLElement) => Promise<unknown> | void;
}

async function drawCharts(grid: HTMLElement, st: Stats, bucket: number, from: Date, to: Date, group: string, signal: AbortSignal): Promise<number> {
  const { xs, at } = timeline(st.volume, bucket, from, to);
  const num = (f: (b: Bucket) => number | undefined) => at.map((b) => (b ? (f(b) ?? 0) : 0));
  const opt = (f: (b: Bucket) => number | undefined) => at.map((b) => (b ? (f(b) ?? null) : null));
  const has = (k: keyof Bucket) => st.volume.some((b) => b[k] !== undefined && b[k] !== null);
  const minutes = bucket >= 3600 ? `${bucket / 3600} h` : `${bucket / 60} min`;

  const cards: ChartCard[] = [
    {
      title: 'Requests',
      note: `per ${minutes}`,
      draw: (el) =>
        timeChart(el, xs, [
          { label: 'requests', values: num((b) => b.requests), color: COLORS.primary, kind: 'bars' },
          { label: 'errors', values: num((b) => b.errors), color: COLORS.error, kind: 'bars' },
        ], { format: fmtCompact, fromZero: true, integer: true, signal }),
    },
    {
      title: 'Cost',
      note: `per ${minutes}`,
      draw: (el) => timeChart(el, xs, [{ label: 'cost', values: num((b) => b.cost_usd), color: COLORS.cost, kind: 'area' }], { format: fmtCost, fromZero: true, signal }),
    },
    {
      title: 'Error rate',
      draw: (el) =>
        timeChart(el, xs, [{ label: 'error rate', values: opt((b) => (b.requests ? b.errors / b.requests : undefined)), color: COLORS.error }], { format: fmtPct, fromZero: true, signal }),
    },
  ];
  if (has('latency_ms')) {
    cards.push({
      title: 'Latency',
      draw: (el) => timeChart(el, xs, percentileSeries(opt, 'latency_ms'), { format: fmtMs, fromZero: true, signal }),
    });
  }
  if (has('ttft_ms')) {
    cards.push({
      title: 'Time to first token',
      draw: (el) => timeChart(el, xs, percentileSeries(opt, 'ttft_ms'), { format: fmtMs, fromZero: true, signal }),
    });
  }
  if (has('prompt_tokens') || has('completion_tokens')) {
    cards.push({
      title: 'Tokens',
      draw: (el) =>
        timeChart(el, xs, [
          { label: 'in', values: num((b) => b.prompt_tokens), color: COLORS.input, kind: 'area' },
          { label: 'out', values: num((b) => b.completion_tokens), color: COLORS.output, kind: 'area' },
        ], { format: fmtCompact, fromZero: true, signal }),
    });
  }
  if (has('cache_hits')) {
    cards.push({
      title: 'Cache hits',
      note: `${fmtCost(st.cost_saved_usd)} saved`,
      draw: (el) => timeChart(el, xs, [{ label: 'cache hits', values: num((b) => b.cache_hits), color: COLORS.ok, kind: 'bars' }], { format: fmtCompact, fromZero: true, integer: true, signal }),
    });
  }
  cards.push(
    { title: 'Cost by model', draw: (el) => void el.append(costBars(st.by_model)) },
    { title: 'Cost by user', draw: (el) => void el.append(costBars(st.by_user)) },
  );
  if (group) {
    cards.push({
      title: `Cost by ${group}`,
      draw: (el) => void el.append(st.by_property?.length ? costBars(st.by_property) : notice(`No requests carry the property "${group}".`, 'empty')),
    });
  }
  cards.push({
    title: 'Tokens in / out by model',
    draw: (el) =>
      void el.append(
        barChart(
          st.by_model.map((g) => ({ label: g.key, values: [g.prompt_tokens, g.completion_tokens] })),
          { series: [{ name: 'in', color: COLORS.input }, { name: 'out', color: COLORS.output }], format: fmtCompact, maxRows: 8 },
        ),
      ),
  });

  const missing = ['latency_ms', 'ttft_ms'].filter((k) => !has(k as keyof Bucket));
  if (missing.length) {
    grid.before(notice('This server reports latency and TTFT percentiles for the whole range only (above), not per bucket.', 'info', { 'data-no-bucket-latency': '' }));
  }

  const pending: Promise<unknown>[] = [];
  for (const c of cards) {
    const plot = h('div', { class: 'chart' });
    grid.append(
      h(
        'section',
        { class: 'card chart-card', 'data-chart': c.title },
        h('div', { class: 'chart-head' }, h('h2', null, c.title), c.note ? h('span', { class: 'muted small' }, c.note) : null),
        plot,
      ),
    );
    const p = c.draw(plot);
    if (p) pending.push(p);
  }
  await Promise.all(pending);
  return cards.length;
}

function percentileSeries(opt: (f: (b: Bucket) => number | undefined) => (number | null)[], key: 'latency_ms' | 'ttft_ms'): Series[] {
  // A bucket without values for the percentile (no streamed call) is a gap.
  const pick = (p: 'p50' | 'p95' | 'p99') => opt((b) => (b[key] && b[key]![p] > 0 ? b[key]![p] : undefined));
  return [
    { label: 'p50', values: pick('p50'), color: COLORS.p50, spanGaps: true },
    { label: 'p95', values: pick('p95'), color: COLORS.p95, spanGaps: true },
    { label: 'p99', values: pick('p99'), color: COLORS.p99, spanGaps: true },
  ];
}

function costBars(groups: Group[]): SVGSVGElement {
  return barChart(
    groups.map((g) => ({ label: g.key, values: [g.cost_usd] })),
    { series: [{ name: 'cost', color: COLORS.cost }], format: fmtCost },
  );
}
