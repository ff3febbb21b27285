// The filter bar shared by the explorer and analytics, and the mapping from
// the page's URL parameters to the query API's parameters.

import { h } from './dom';

export interface RangePreset {
  key: string;
  label: string;
  seconds: number; // 0: no bound
}

export const PRESETS: RangePreset[] = [
  { key: '15m', label: 'Last 15 minutes', seconds: 900 },
  { key: '1h', label: 'Last hour', seconds: 3600 },
  { key: '6h', label: 'Last 6 hours', seconds: 6 * 3600 },
  { key: '24h', label: 'Last 24 hours', seconds: 86400 },
  { key: '7d', label: 'Last 7 days', seconds: 7 * 86400 },
  { key: '30d', label: 'Last 30 days', seconds: 30 * 86400 },
  { key: 'all', label: 'All time', seconds: 0 },
];

/** Text filters: URL parameter = API parameter. */
const TEXT_FILTERS: { name: string; label: string; placeholder: string; list?: string }[] = [
  { name: 'user', label: 'User', placeholder: 'any user', list: 'dl-user' },
  { name: 'session', label: 'Session', placeholder: 'session id' },
  { name: 'model', label: 'Model', placeholder: 'any model', list: 'dl-model' },
  { name: 'provider', label: 'Provider', placeholder: 'any', list: 'dl-provider' },
  { name: 'status', label: 'Status', placeholder: 'e.g. 200' },
  { name: 'property', label: 'Property', placeholder: 'name=value' },
];

/** The page-level parameters the filter bar owns (the rest are kept). */
const OWNED = ['range', 'from', 'to', 'cache', 'pages', ...TEXT_FILTERS.map((f) => f.name)];

export interface TimeRange {
  from: Date | null;
  to: Date | null;
}

/** The range the parameters select; presets are relative to now. */
export function resolveRange(params: URLSearchParams, allowAll: boolean): TimeRange {
  const from = parseTime(params.get('from'));
  const to = parseTime(params.get('to'));
  if (params.get('range') === 'custom' || (!params.get('range') && (from || to))) {
    return { from, to };
  }
  let preset = PRESETS.find((p) => p.key === params.get('range')) ?? PRESETS[3];
  if (preset.seconds === 0 && !allowAll) preset = PRESETS[3];
  if (preset.seconds === 0) return { from: null, to: null };
  const now = new Date();
  return { from: new Date(now.getTime() - preset.seconds * 1000), to: null };
}

/** The API's filter parameters (shared by /v1/requests and /v1/stats). */
export function apiFilters(params: URLSearchParams, range: TimeRange): URLSearchParams {
  const q = new URLSearchParams();
  for (const f of TEXT_FILTERS) {
    const v = (params.get(f.name) ?? '').trim();
    if (!v) continue;
    if (f.name === 'property') {
      for (const kv of splitProperties(v)) q.append('property', kv);
    } else {
      q.set(f.name, v);
    }
  }
  const cache = params.get('cache');
  if (cache === 'hit' || cache === 'miss') q.set('cache_hit', String(cache === 'hit'));
  if (range.from) q.set('from', rfc3339(range.from));
  if (range.to) q.set('to', rfc3339(range.to));
  return q;
}

/** "team=search, env=prod" → ["team=search", "env=prod"]. */
export function splitProperties(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function parseTime(s: string | null): Date | null {
  if (!s) return null;
  const d = new Date(s);
  return isNaN(d.getTime()) ? null : d;
}

/** A Date as the value of an <input type="datetime-local"> (local time). */
function localInput(d: Date | null): string {
  if (!d) return '';
  const off = d.getTimezoneOffset() * 60_000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

export interface FilterBarOptions {
  allowAll: boolean;
  /** Called with the page's new parameters when the user applies filters. */
  onApply: (params: URLSearchParams) => void;
  /** Extra controls placed before the buttons (e.g. group by property). */
  extra?: HTMLElement[];
}

export function filterBar(params: URLSearchParams, opts: FilterBarOptions): HTMLFormElement {
  const presets = PRESETS.filter((p) => opts.allowAll || p.seconds > 0);
  const range = params.get('range') ?? (params.get('from') || params.get('to') ? 'custom' : '24h');
  const custom = resolveRange(params, opts.allowAll);

  const rangeSelect = h(
    'select',
    { name: 'range', 'aria-label': 'Time range' },
    presets.map((p) => h('option', { value: p.key, selected: p.key === range }, p.label)),
    h('option', { value: 'custom', selected: range === 'custom' }, 'Custom range…'),
  );
  const fromInput = h('input', { type: 'datetime-local', name: 'from', value: localInput(range === 'custom' ? custom.from : null) });
  const toInput = h('input', { type: 'datetime-local', name: 'to', value: localInput(range === 'custom' ? custom.to : null) });
  const customBox = h('div', { class: 'custom-range', hidden: range !== 'custom' }, labelled('From', fromInput), labelled('To', toInput));
  rangeSelect.addEventListener('change', () => {
    customBox.hidden = rangeSelect.value !== 'custom';
  });

  const cache = h(
    'select',
    { name: 'cache' },
    h('option', { value: '' }, 'any'),
    h('option', { value: 'hit', selected: params.get('cache') === 'hit' }, 'hits only'),
    h('option', { value: 'miss', selected: params.get('cache') === 'miss' }, 'misses only'),
  );

  const form = h(
    'form',
    { class: 'filters card', 'data-filters': '' },
    h('div', { class: 'filter-row' }, labelled('Range', rangeSelect), customBox),
    h(
      'div',
      { class: 'filter-row' },
      TEXT_FILTERS.map((f) =>
        labelled(
          f.label,
          h('input', {
            type: 'text',
            name: f.name,
            value: params.get(f.name) ?? '',
            placeholder: f.placeholder,
            list: f.list,
            autocomplete: 'off',
            spellcheck: 'false',
          }),
        ),
      ),
      labelled('Cache', cache),
      opts.extra ?? [],
      h(
        'div',
        { class: 'filter-actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Apply'),
        h('button', { type: 'button', class: 'ghost', onclick: () => opts.onApply(keepOthers(params)) }, 'Reset'),
      ),
    ),
    h('datalist', { id: 'dl-user' }),
    h('datalist', { id: 'dl-model' }),
    h('datalist', { id: 'dl-provider' }, ['openai', 'anthropic', 'azure', 'gemini', 'together', 'groq'].map((p) => h('option', { value: p }))),
  );

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = keepOthers(params);
    const data = new FormData(form);
    for (const k of new Set(data.keys())) next.delete(k);
    for (const [k, v] of data.entries()) {
      const s = String(v).trim();
      if (!s || k === 'from' || k === 'to') continue;
      next.set(k, s);
    }
    if (rangeSelect.value === 'custom') {
      if (fromInput.value) next.set('from', rfc3339(new Date(fromInput.value)));
      if (toInput.value) next.set('to', rfc3339(new Date(toInput.value)));
    }
    opts.onApply(next);
  });
  return form;
}

/** Offer known values (from /v1/stats) in the inputs' suggestion lists. */
export function suggest(form: HTMLFormElement, list: 'dl-user' | 'dl-model', values: string[]): void {
  const dl = form.querySelector<HTMLDataListElement>('#' + list);
  if (!dl) return;
  dl.replaceChildren(...values.filter(Boolean).map((v) => h('option', { value: v })));
}

function keepOthers(params: URLSearchParams): URLSearchParams {
  const next = new URLSearchParams();
  for (const [k, v] of params) if (!OWNED.includes(k)) next.append(k, v);
  return next;
}

export function labelled(label: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'control' }, h('span', null, label), control);
}
