// The dashboard's shell: header, navigation and the router that renders
// one page at a time from the location hash.

import 'uplot/dist/uPlot.min.css';
import './styles.css';

import { HttpError, KeyRequired } from './api';
import { keyStatus, promptForKey } from './auth';
import { h } from './dom';
import { renderAlerts } from './pages/alerts';
import { renderAnalytics } from './pages/analytics';
import { renderDetail } from './pages/detail';
import { renderRequests } from './pages/requests';
import { renderSession } from './pages/session';
import { Page, Route, parseRoute } from './router';
import { notice } from './ui';

export type PageRenderer = (view: HTMLElement, route: Route, signal: AbortSignal) => Promise<void>;

const PAGES: Record<Page, { title: string; nav: string; render: PageRenderer }> = {
  requests: { title: 'Requests', nav: 'requests', render: renderRequests },
  request: { title: 'Request', nav: 'requests', render: renderDetail },
  session: { title: 'Session', nav: 'requests', render: renderSession },
  analytics: { title: 'Analytics', nav: 'analytics', render: renderAnalytics },
  alerts: { title: 'Alerts', nav: 'alerts', render: renderAlerts },
};

const NAV = [
  { key: 'requests', label: 'Requests', href: '#/requests' },
  { key: 'analytics', label: 'Analytics', href: '#/analytics' },
  { key: 'alerts', label: 'Alerts', href: '#/alerts' },
];

const navLinks = NAV.map((n) => h('a', { href: n.href, 'data-nav': n.key }, n.label));
const keySlot = h('div', { class: 'key-slot' });
const main = h('main', { id: 'view' });

document.body.append(
  h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '#/requests' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Tollgate'),
    h('nav', null, navLinks),
    keySlot,
  ),
  main,
);

let inFlight: AbortController | null = null;

async function render(): Promise<void> {
  inFlight?.abort();
  const ctl = new AbortController();
  inFlight = ctl;
  const route = parseRoute(location.hash);
  const page = PAGES[route.page];
  document.title = `${page.title} · Tollgate`;
  for (const a of navLinks) a.classList.toggle('active', a.dataset.nav === page.nav);
  keySlot.replaceChildren(keyStatus(render));

  // data-route and, once the page is complete, data-ready tell a test (or
  // a person's tooling) that what is shown belongs to the current hash.
  const view = h('div', { class: 'view', 'data-page': route.page, 'data-route': location.hash });
  main.replaceChildren(view);
  try {
    await page.render(view, route, ctl.signal);
    if (!ctl.signal.aborted) view.setAttribute('data-ready', '');
  } catch (err) {
    if (ctl.signal.aborted) return;
    view.querySelector('.loading')?.remove();
    if (err instanceof KeyRequired) {
      view.append(notice('This page needs the API key.', 'info', { 'data-needs-key': '' }));
      promptForKey(err.message, render);
    } else if (err instanceof HttpError) {
      view.append(notice(`The API answered ${err.status}: ${err.message}`, 'error'));
    } else {
      view.append(notice(`Something went wrong: ${err instanceof Error ? err.message : String(err)}`, 'error'));
    }
  }
  if (!ctl.signal.aborted) keySlot.replaceChildren(keyStatus(render));
}

window.addEventListener('hashchange', () => void render());
void render();
