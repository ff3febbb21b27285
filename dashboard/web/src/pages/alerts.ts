// Alert rules (list, create, delete) and the history of fired alerts. A
// server without the alert API answers 404: the page says so.

import { del, getJSON, HttpError, postJSON } from '../api';
import { Child, h } from '../dom';
import { labelled, splitProperties } from '../filters';
import { fmtCost, fmtDuration, fmtInt, fmtMs, fmtPct, fmtTime } from '../format';
import { Route } from '../router';
import type { AlertEvent, AlertRule } from '../types';
import { badge, card, loading, notice, pageHeader } from '../ui';

// The metrics the alert API knows (alerts.Metric).
const METRICS: [string, string][] = [
  ['cost_usd', 'Cost (USD)'],
  ['error_rate', 'Error rate (0–1)'],
  ['latency_p95_ms', 'Latency p95 (ms)'],
];

export async function renderAlerts(view: HTMLElement, _route: Route, signal: AbortSignal): Promise<void> {
  view.append(pageHeader('Alerts'), loading('alert rules'));
  let rules: AlertRule[];
  let events: AlertEvent[];
  try {
    const [r, e] = await Promise.all([
      getJSON<{ rules: AlertRule[] }>('/v1/alerts', signal),
      getJSON<{ events: AlertEvent[] }>('/v1/alerts/events?limit=100', signal),
    ]);
    rules = r.rules ?? [];
    events = e.events ?? [];
  } catch (err) {
    // 404: a server without the alert API; 503: one without its storage.
    if (err instanceof HttpError && (err.status === 404 || err.status === 405 || err.status === 501 || err.status === 503)) {
      const why = err.status === 503 ? err.message : 'this Tollgate server has no alert API';
      view.replaceChildren(pageHeader('Alerts'), notice(`Alerts not available: ${why}.`, 'empty', { 'data-alerts-unavailable': '' }));
      view.setAttribute('data-alerts-state', 'unavailable');
      return;
    }
    throw err;
  }
  const rerender = () => {
    view.replaceChildren();
    void renderAlerts(view, _route, signal).catch((err) => view.append(notice(String(err), 'error')));
  };
  view.replaceChildren(
    pageHeader('Alerts'),
    card('Rules', rules.length ? rulesTable(rules, rerender) : notice('No alert rules yet.', 'empty')),
    card('New rule', ruleForm(rerender)),
    card('Fired alerts', events.length ? eventsTable(events) : notice('No alert has fired yet.', 'empty')),
  );
  view.setAttribute('data-alerts-state', 'ready');
}

function scopeText(r: AlertRule): Child {
  const s = r.scope ?? {};
  const parts: HTMLElement[] = [];
  if (s.model) parts.push(badge(`model ${s.model}`, 'neutral'));
  if (s.user) parts.push(badge(`user ${s.user}`, 'neutral'));
  if (s.property?.name) parts.push(badge(`${s.property.name}=${s.property.value}`, 'neutral'));
  return parts.length ? h('span', { class: 'chips' }, parts) : h('span', { class: 'muted' }, 'all traffic');
}

function rulesTable(rules: AlertRule[], onChange: () => void): HTMLTableElement {
  return h(
    'table',
    { class: 'rules', 'data-rules': '' },
    h('thead', null, h('tr', null, ['Name', 'Condition', 'Scope', 'Webhook', 'Cooldown', 'State', ''].map((c) => h('th', null, c)))),
    h(
      'tbody',
      null,
      rules.map((r) =>
        h(
          'tr',
          { 'data-rule': r.id },
          h('td', null, h('strong', null, r.name)),
          h('td', null, h('span', { class: 'mono' }, r.metric), ` > ${metricValue(r.metric, r.threshold)}`, h('span', { class: 'muted' }, ` over ${fmtDuration(r.window)}`)),
          h('td', null, scopeText(r)),
          h('td', { class: 'truncate' }, r.webhook_url ? webhookOrigin(r.webhook_url) : h('span', { class: 'muted' }, '—')),
          h('td', null, fmtDuration(r.cooldown)),
          h('td', null, r.enabled ? badge('enabled', 'ok') : badge('disabled', 'neutral')),
          h('td', { class: 'actions' }, r.read_only ? badge('read-only', 'neutral', { title: 'Defined in the configuration file' }) : deleteButton(r, onChange)),
        ),
      ),
    ),
  );
}

/** Two clicks delete: the first arms the button for a few seconds. */
function deleteButton(r: AlertRule, onChange: () => void): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'danger small', 'data-delete': r.id }, 'Delete');
  let armed = false;
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Confirm delete';
      setTimeout(() => {
        armed = false;
        b.textContent = 'Delete';
      }, 4000);
      return;
    }
    b.disabled = true;
    try {
      await del(`/v1/alerts/${encodeURIComponent(r.id)}`);
      onChange();
    } catch (err) {
      b.disabled = false;
      b.after(h('span', { class: 'error-text' }, err instanceof Error ? err.message : String(err)));
    }
  });
  return b;
}

function nameValue(s: string): [string, string] {
  const i = s.indexOf('=');
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

function ruleForm(onCreated: () => void): HTMLFormElement {
  const input = (name: string, attrs: Record<string, string | boolean> = {}) => h('input', { name, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const error = h('div', { class: 'error-text', role: 'alert' });
  const form = h(
    'form',
    { class: 'rule-form', 'data-rule-form': '' },
    h(
      'div',
      { class: 'form-grid' },
      labelled('Name', input('name', { required: true, placeholder: 'Daily spend' })),
      labelled('Metric', h('select', { name: 'metric', required: true }, METRICS.map(([v, label]) => h('option', { value: v }, label)))),
      labelled('Threshold', input('threshold', { required: true, type: 'number', step: 'any', placeholder: '50' })),
      labelled('Window', input('window', { required: true, placeholder: '15m' })),
      labelled('Cooldown', input('cooldown', { placeholder: '1h' })),
      labelled('Model', input('model', { placeholder: 'any' })),
      labelled('User', input('user', { placeholder: 'any' })),
      labelled('Property', input('property', { placeholder: 'name=value' })),
      labelled('Webhook URL', input('webhook_url', { type: 'url', required: true, placeholder: 'https://hooks.example.com/…' })),
      h('label', { class: 'control checkbox' }, h('input', { type: 'checkbox', name: 'enabled', checked: true }), h('span', null, 'Enabled')),
    ),
    error,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create rule')),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const get = (k: string) => String(f.get(k) ?? '').trim();
    const [pname, pvalue] = nameValue(splitProperties(get('property'))[0] ?? '');
    const rule = {
      name: get('name'),
      metric: get('metric'),
      threshold: Number(get('threshold')),
      window: get('window'),
      cooldown: get('cooldown') || undefined,
      scope: {
        model: get('model') || undefined,
        user: get('user') || undefined,
        property: pname ? { name: pname.toLowerCase(), value: pvalue } : undefined,
      },
      webhook_url: get('webhook_url') || undefined,
      enabled: f.get('enabled') !== null,
    };
    error.textContent = '';
    try {
      await postJSON('/v1/alerts', rule);
      onCreated();
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  return form;
}

function eventsTable(events: AlertEvent[]): HTMLTableElement {
  return h(
    'table',
    { class: 'events', 'data-events': '' },
    h('thead', null, h('tr', null, ['Fired', 'Rule', 'Metric', 'Value', 'Threshold', 'Window', 'Delivery'].map((c, i) => h('th', { class: i === 3 || i === 4 ? 'num' : null }, c)))),
    h(
      'tbody',
      null,
      events.map((e) =>
        h(
          'tr',
          null,
          h('td', { class: 'nowrap' }, fmtTime(e.fired_at)),
          h('td', null, e.rule_name || e.rule_id),
          h('td', { class: 'mono' }, e.metric),
          h('td', { class: 'num' }, metricValue(e.metric, e.value)),
          h('td', { class: 'num' }, metricValue(e.metric, e.threshold)),
          h('td', null, fmtDuration(e.window)),
          h('td', null, e.delivered ? badge('delivered', 'ok') : h('span', null, badge('failed', 'err'), e.delivery_error ? h('span', { class: 'muted small' }, ' ' + e.delivery_error) : null)),
        ),
      ),
    ),
  );
}

/** A metric's value in its unit. */
function metricValue(metric: string, v: number): string {
  switch (metric) {
    case 'cost_usd':
      return fmtCost(v);
    case 'error_rate':
      return fmtPct(v);
    case 'latency_p95_ms':
      return fmtMs(v);
    default:
      return Number.isInteger(v) ? fmtInt(v) : v.toPrecision(4);
  }
}

/** Only the webhook's origin is shown: its path often holds a token. */
function webhookOrigin(raw: string): string {
  try {
    const u = new URL(raw);
    return u.origin + (u.pathname.length > 1 || u.search ? '/…' : '');
  } catch {
    return '(not a URL)';
  }
}
