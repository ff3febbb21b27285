// A session: all its calls, grouped into a tree by session_path, with the
// cost and latency of every node.

import { getJSON } from '../api';
import { h } from '../dom';
import { fmtCost, fmtInt, fmtMs, fmtTime } from '../format';
import { link, Route } from '../router';
import { buildTree, SessionNode } from '../sessiontree';
import type { RequestList, RequestRecord } from '../types';
import { card, kpi, loading, mono, notice, pageHeader, statusBadge } from '../ui';

// A session rarely has more; the cap keeps a runaway one from hanging the tab.
const MAX_CALLS = 5000;
const PAGE = 500;

export async function renderSession(view: HTMLElement, route: Route, signal: AbortSignal): Promise<void> {
  const back = h('a', { class: 'back', href: link('requests', '', new URLSearchParams({ session: route.id, range: 'all' })) }, '← Requests of this session');
  view.append(back, loading('the session'));
  const { records, truncated } = await fetchSession(route.id, signal);
  if (!records.length) {
    view.replaceChildren(back, pageHeader('Session'), notice(`No calls in session ${route.id}.`, 'empty'));
    return;
  }
  const tree = buildTree(records);
  const times = records.map((r) => Date.parse(r.created_at));
  const first = Math.min(...times);
  const last = Math.max(...times);
  const name = records.find((r) => r.session_name)?.session_name ?? '';

  view.replaceChildren(
    back,
    pageHeader(name || 'Session', h('div', { class: 'header-meta' }, mono(route.id))),
    h(
      'div',
      { class: 'kpis' },
      kpi('Calls', fmtInt(tree.count)),
      kpi('Cost', fmtCost(tree.cost)),
      kpi('Total latency', fmtMs(tree.latency)),
      kpi('Duration', fmtMs(last - first), `${fmtTime(new Date(first))} → ${fmtTime(new Date(last))}`),
    ),
    ...(truncated ? [notice(`Showing the first ${fmtInt(MAX_CALLS)} calls.`, 'info')] : []),
    card(
      null,
      h('div', { class: 'tree-head' }, h('h2', null, 'Calls by path'), h('span', { class: 'tree-totals' }, h('span', null, 'calls'), h('span', null, 'cost'), h('span', null, 'latency'))),
      h('ul', { class: 'tree', 'data-session-tree': '' }, nodeItem(tree, true)),
    ),
  );
}

async function fetchSession(id: string, signal: AbortSignal): Promise<{ records: RequestRecord[]; truncated: boolean }> {
  const records: RequestRecord[] = [];
  let cursor = '';
  while (records.length < MAX_CALLS) {
    const q = new URLSearchParams({ session: id, limit: String(PAGE) });
    if (cursor) q.set('cursor', cursor);
    const page = await getJSON<RequestList>('/v1/requests?' + q, signal);
    records.push(...(page.requests ?? []));
    if (!page.next_cursor) return { records, truncated: false };
    cursor = page.next_cursor;
  }
  return { records, truncated: true };
}

function nodeItem(n: SessionNode, isRoot = false): HTMLElement {
  const head = h(
    'div',
    { class: 'tree-node' },
    h('span', { class: 'tree-name' }, isRoot ? 'session' : n.name),
    isRoot ? null : h('span', { class: 'tree-path mono' }, n.path),
    h(
      'span',
      { class: 'tree-totals' },
      h('span', { 'data-node-count': '' }, `${fmtInt(n.count)} ${n.count === 1 ? 'call' : 'calls'}`),
      h('span', { 'data-node-cost': '' }, fmtCost(n.cost)),
      h('span', { 'data-node-latency': '' }, fmtMs(n.latency)),
    ),
  );
  return h(
    'li',
    { 'data-path': n.path },
    head,
    n.calls.length || n.children.length
      ? h(
          'ul',
          null,
          n.calls.map((r) => callItem(r)),
          n.children.map((c) => nodeItem(c)),
        )
      : null,
  );
}

function callItem(r: RequestRecord): HTMLElement {
  return h(
    'li',
    { class: 'tree-call', 'data-call': r.request_id },
    h(
      'a',
      { href: link('request', r.request_id) },
      h('span', { class: 'muted nowrap' }, fmtTime(r.created_at).slice(11)),
      statusBadge(r.status),
      h('span', { class: 'call-name' }, r.request_name || r.model),
      h('span', { class: 'muted' }, r.request_name ? r.model : ''),
      h('span', { class: 'tree-totals' }, h('span', null, ''), h('span', null, fmtCost(r.cost_usd)), h('span', null, fmtMs(r.latency_ms))),
    ),
  );
}
