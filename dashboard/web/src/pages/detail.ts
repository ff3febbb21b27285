// One request: who, what, how much, how fast, what policies did, and the
// bodies — a streamed response both reassembled and raw.

import { getJSON, HttpError } from '../api';
import { Child, field, h } from '../dom';
import { fmtCost, fmtInt, fmtMs, fmtTime } from '../format';
import { bodyBlock } from '../json';
import { link, Route } from '../router';
import { looksLikeSSE, reassemble, responseText } from '../sse';
import type { RequestDetail } from '../types';
import { badge, card, kpi, loading, mono, notice, pageHeader, statusBadge } from '../ui';
import { cacheLabel, flags } from './requests';

export async function renderDetail(view: HTMLElement, route: Route, signal: AbortSignal): Promise<void> {
  const back = h('a', { class: 'back', href: link('requests', '', route.params) }, '← Requests');
  view.append(back, loading('the request'));
  let r: RequestDetail;
  try {
    r = await getJSON<RequestDetail>(`/v1/requests/${encodeURIComponent(route.id)}`, signal);
  } catch (err) {
    if (err instanceof HttpError && (err.status === 404 || err.status === 400)) {
      view.replaceChildren(back, notice(`No request ${route.id}: ${err.message}`, 'empty', { 'data-not-found': '' }));
      return;
    }
    throw err;
  }
  view.replaceChildren(back, header(r), metrics(r), facts(r), bodies(r));
  view.setAttribute('data-request-id', r.request_id);
}

function header(r: RequestDetail): HTMLElement {
  return pageHeader(
    r.request_name || 'Request',
    h('div', { class: 'header-meta' }, statusBadge(r.status), flags(r), mono(r.request_id)),
  );
}

function metrics(r: RequestDetail): HTMLElement {
  return h(
    'div',
    { class: 'kpis', 'data-metrics': '' },
    kpi('Cost', fmtCost(r.cost_usd), r.cache_hit ? 'cache hit: not charged' : null),
    kpi('Latency', fmtMs(r.latency_ms)),
    kpi('Time to first token', r.ttft_ms > 0 ? fmtMs(r.ttft_ms) : '—', r.stream ? 'streamed' : 'not streamed'),
    kpi('Prompt tokens', fmtInt(r.prompt_tokens), cachedDetail(r)),
    kpi('Completion tokens', fmtInt(r.completion_tokens), r.reasoning_tokens ? `${fmtInt(r.reasoning_tokens)} reasoning` : null),
  );
}

function cachedDetail(r: RequestDetail): string | null {
  const parts: string[] = [];
  if (r.cached_tokens) parts.push(`${fmtInt(r.cached_tokens)} cached`);
  if (r.cache_write_tokens) parts.push(`${fmtInt(r.cache_write_tokens)} cache write`);
  return parts.length ? parts.join(', ') : null;
}

function panel(title: string, ...fields: HTMLElement[]): HTMLElement {
  return h('section', { class: 'panel', 'data-panel': title.toLowerCase() }, h('h3', null, title), h('dl', null, fields));
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

function facts(r: RequestDetail): HTMLElement {
  const props = r.properties ?? [];
  const session: Child = r.session_id
    ? h('a', { href: link('session', r.session_id), 'data-session-link': '' }, r.session_name || r.session_id)
    : '';
  const decision = r.policy_decision ? badge(r.policy_decision, r.policy_decision.startsWith('deny') ? 'err' : 'ok') : '';
  return h(
    'div',
    { class: 'panels' },
    panel(
      'Call',
      field('Time', fmtTime(r.created_at)),
      field('Provider', r.provider),
      field('Model', r.response_model && r.response_model !== r.model ? `${r.model} → ${r.response_model}` : r.model),
      field('Path', r.method ? `${r.method} ${r.path}` : r.path),
      field('Target', r.target_url ?? ''),
      field('Tenant', r.tenant),
    ),
    panel(
      'Who',
      field('User', r.user_id),
      field('Session', session),
      field('Session path', r.session_path ? mono(r.session_path) : ''),
      field('Properties', props.length ? h('span', { class: 'chips' }, props.map((p) => badge(`${p.key}=${p.value}`, 'neutral'))) : ''),
      field('Feedback', r.rating === true ? badge('good', 'ok') : r.rating === false ? badge('bad', 'err') : ''),
    ),
    panel(
      'Cache & limits',
      field('Cache hit', r.cache_hit ? (r.cache_similarity ? cacheLabel(r) : 'exact hit') : 'no'),
      field('Cache reference', r.cache_reference_id ? h('a', { href: link('request', r.cache_reference_id), class: 'mono' }, r.cache_reference_id) : ''),
      field('Rate limited', yesNo(r.rate_limited)),
    ),
    panel(
      'Retries & fallback',
      field('Fallback index', r.fallback_index > 0 ? `${r.fallback_index} (fallback entry ${r.fallback_index})` : '0 (original request)'),
      field('Attempts', fmtInt(r.attempts)),
      field('Retry policy', r.retry_policy ? mono(r.retry_policy) : ''),
    ),
    panel('Prompt', field('Prompt id', r.prompt_id), field('Version', r.prompt_id ? String(r.prompt_version) : '')),
    panel(
      'Workload & policy',
      field('Workload', r.workload_namespace || r.workload_name ? `${r.workload_namespace}/${r.workload_name}` : ''),
      field('Service account', r.workload_service_account ?? ''),
      field('Policy rule', r.policy_rule),
      field('Decision', decision),
    ),
    r.error ? h('section', { class: 'panel wide error-panel' }, h('h3', null, 'Error'), h('pre', { class: 'code raw' }, r.error)) : null,
  );
}

function bodies(r: RequestDetail): HTMLElement {
  const resp = r.response_body ?? '';
  const sections: HTMLElement[] = [card('Request body', h('div', { 'data-body': 'request' }, bodyBlock(r.request_body ?? '')))];
  if (looksLikeSSE(resp)) {
    const s = reassemble(resp);
    sections.push(
      card(
        `Response — reassembled from ${fmtInt(s.events)} stream events`,
        s.thinking ? h('details', null, h('summary', null, 'Reasoning'), h('pre', { class: 'code text' }, s.thinking)) : null,
        h('pre', { class: 'code text', 'data-body': 'reassembled' }, s.text || '(no text)'),
        s.toolCalls.map((t) => h('div', { class: 'tool-call' }, h('div', { class: 'muted small' }, `tool call ${t.name}`), bodyBlock(t.arguments))),
      ),
      card('Response — raw stream', h('div', { 'data-body': 'raw-stream' }, h('pre', { class: 'code raw' }, resp.trimEnd()))),
    );
  } else {
    const text = responseText(resp);
    if (text) sections.push(card('Response text', h('pre', { class: 'code text', 'data-body': 'response-text' }, text)));
    sections.push(card('Response body', h('div', { 'data-body': 'response' }, bodyBlock(resp))));
  }
  return h('div', { class: 'bodies' }, sections);
}
