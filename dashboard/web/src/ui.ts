// Small building blocks shared by the pages.

import { Child, h } from './dom';
import { statusClass, statusLabel } from './format';

export function pageHeader(title: string, ...extra: Child[]): HTMLElement {
  return h('div', { class: 'page-header' }, h('h1', null, title), extra);
}

export function card(title: string | null, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, children);
}

export function badge(text: string, kind = 'neutral', attrs: Record<string, string> = {}): HTMLElement {
  return h('span', { class: `badge ${kind}`, ...attrs }, text);
}

export function statusBadge(status: number): HTMLElement {
  return badge(statusLabel(status), statusClass(status), { 'data-status': String(status) });
}

/** A headline number with a caption and an optional detail line. */
export function kpi(label: string, value: string, detail?: Child, attrs: Record<string, string> = {}): HTMLElement {
  return h('div', { class: 'kpi', ...attrs }, h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, value), detail ? h('div', { class: 'kpi-detail' }, detail) : null);
}

export function notice(text: Child, kind: 'info' | 'error' | 'empty' = 'info', attrs: Record<string, string> = {}): HTMLElement {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status', ...attrs }, text);
}

export function loading(what: string): HTMLElement {
  return h('div', { class: 'loading', 'aria-busy': 'true' }, `Loading ${what}…`);
}

export function mono(text: string, title?: string): HTMLElement {
  return h('span', { class: 'mono', title: title ?? text }, text);
}

export function shortID(id: string): string {
  return id.length > 13 ? id.slice(0, 8) + '…' + id.slice(-4) : id;
}
