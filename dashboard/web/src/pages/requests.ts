// The request explorer: filters, a newest-first table, cursor pages.

import { getJSON } from '../api';
import { h } from '../dom';
import { apiFilters, filterBar, resolveRange, rfc3339, suggest } from '../filters';
import { fmtCost, fmtInt, fmtMs, fmtTime } from '../format';
import { go, link, Route } from '../router';
import type { RequestList, RequestRecord, Stats } from '../types';
import { badge, card, loading, notice, pageHeader, shortID, statusBadge } from '../ui';

const DEFAULT_LIMIT = 50;

export async function renderRequests(view: HTMLElement, route: Route, signal: AbortSignal): Promise<void> {
  const params = route.params;
  const range = resolveRange(params, true);
  const bar = filterBar(params, { allowAll: true, onApply: (p) => go(link('requests', '', p)) });
  const body = h('div', null, loading('requests'));
  view.append(pageHeader('Requests'), bar, body);

  // The cursors of the pages walked so far: the last one is this page's.
  const pages = (params.get('pages') ?? '').split(',').filter(Boolean);
  const limit = clampLimit(params.get('limit'));
  const q = apiFilters(params, range);
  q.set('limit', String(limit));
  if (pages.length) q.set('cursor', pages[pages.length - 1]);

  void offerSuggestions(bar, params, signal);
  const list = await getJSON<RequestList>('/v1/requests?' + q, signal);
  const rows = list.requests ?? [];

  const first = pages.length * limit + 1;
  const summary = rows.length ? `${fmtInt(first)}–${fmtInt(first + rows.length - 1)}` : 'none';
  const newer = new URLSearchParams(params);
  setPages(newer, pages.slice(0, -1));
  const older = new URLSearchParams(params);
  setPages(older, [...pages, list.next_cursor ?? '']);

  const pager = h(
    'div',
    { class: 'pager' },
    h('span', { class: 'muted', 'data-showing': '' }, `Showing ${summary}`),
    h('a', { class: 'button', href: link('requests', '', newer), 'data-pager': 'newer', 'aria-disabled': pages.length === 0 ? 'true' : null }, '← Newer'),
    h('a', { class: 'button', href: link('requests', '', older), 'data-pager': 'older', 'aria-disabled': list.next_cursor ? null : 'true' }, 'Older →'),
  );

  body.replaceChildren(
    rows.length
      ? card(null, requestTable(rows, params), pager)
      : card(null, notice('No requests match these filters in this range.', 'empty', { 'data-empty': '' }), pager),
  );
}

function setPages(p: URLSearchParams, pages: string[]): void {
  if (pages.length) p.set('pages', pages.join(','));
  else p.delete('pages');
}

function clampLimit(s: string | null): number {
  const n = Number(s);
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : DEFAULT_LIMIT;
}

/** The table of requests; a row opens the request, keeping the filters. */
export function requestTable(rows: RequestRecord[], params: URLSearchParams): HTMLTableElement {
  const back = new URLSearchParams(params);
  return h(
    'table',
    { class: 'requests', 'data-requests': '' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Time', 'Status', 'Provider', 'Model', 'User', 'Session', 'Tokens in / out', 'Cost', 'Latency', 'TTFT', ''].map((c, i) =>
          h('th', { class: i >= 6 && i <= 9 ? 'num' : null }, c),
        ),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map((r) => {
        const href = link('request', r.request_id, back);
        const tr = h(
          'tr',
          { class: 'row-link', 'data-id': r.request_id },
          h('td', { class: 'nowrap' }, h('a', { href, class: 'row-open', title: r.request_id }, fmtTime(r.created_at))),
          h('td', null, statusBadge(r.status)),
          h('td', { 'data-col': 'provider' }, r.provider || h('span', { class: 'muted' }, '—')),
          h('td', { 'data-col': 'model' }, r.model || h('span', { class: 'muted' }, '—'), r.response_model && r.response_model !== r.model ? h('div', { class: 'muted small' }, '→ ' + r.response_model) : null),
          h('td', { 'data-col': 'user' }, r.user_id || h('span', { class: 'muted' }, '—')),
          h('td', { 'data-col': 'session' }, r.session_id ? h('a', { href: link('session', r.session_id), title: r.session_id }, r.session_name || shortID(r.session_id)) : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'num' }, `${fmtInt(r.prompt_tokens)} / ${fmtInt(r.completion_tokens)}`),
          h('td', { class: 'num' }, fmtCost(r.cost_usd)),
          h('td', { class: 'num' }, fmtMs(r.latency_ms)),
          h('td', { class: 'num' }, r.ttft_ms > 0 ? fmtMs(r.ttft_ms) : h('span', { class: 'muted' }, '—')),
          h('td', null, h('span', { class: 'chips' }, flags(r))),
        );
        tr.addEventListener('click', (ev) => {
          if ((ev.target as Element).closest('a')) return;
          go(href);
        });
        return tr;
      }),
    ),
  );
}

export function flags(r: RequestRecord): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (r.stream) out.push(badge('stream', 'info'));
  if (r.cache_hit) out.push(badge(cacheLabel(r), 'ok', { 'data-cache': r.cache_similarity ? 'semantic' : 'exact' }));
  if (r.rate_limited) out.push(badge('rate limited', 'warn'));
  if (r.fallback_index > 0) out.push(badge(`fallback ${r.fallback_index}`, 'warn'));
  if (r.attempts > 1) out.push(badge(`${r.attempts} attempts`, 'neutral'));
  if (r.prompt_id) out.push(badge('prompt', 'neutral'));
  if (r.policy_decision.startsWith('deny')) out.push(badge('denied', 'err'));
  return out;
}

/** A cache hit's kind: "semantic hit 0.97" (the similarity) or "cache hit" (exact). */
export function cacheLabel(r: RequestRecord): string {
  return r.cache_similarity ? `semantic hit ${r.cache_similarity.toFixed(2)}` : 'cache hit';
}

/** Known models and users for the filter inputs, from the range's stats. */
async function offerSuggestions(bar: HTMLFormElement, params: URLSearchParams, signal: AbortSignal): Promise<void> {
  const range = resolveRange(params, false);
  const q = new URLSearchParams();
  if (range.from) q.set('from', rfc3339(range.from));
  try {
    const st = await getJSON<Stats>('/v1/stats?' + q, signal);
    suggest(bar, 'dl-model', (st.by_model ?? []).map((g) => g.key));
    suggest(bar, 'dl-user', (st.by_user ?? []).map((g) => g.key));
  } catch {
    // Suggestions are a convenience; the page works without them.
  }
}
