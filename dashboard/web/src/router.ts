// The whole view state lives in the location hash — #/page[/id][?query] —
// so every page, its filters and an opened request can be linked, and the
// dashboard works wherever the handler is mounted.

export type Page = 'requests' | 'request' | 'session' | 'analytics' | 'alerts';

export interface Route {
  page: Page;
  id: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '');
  const [path, query = ''] = splitOnce(raw, '?');
  const [section, id = ''] = splitOnce(path, '/');
  const params = new URLSearchParams(query);
  const decoded = safeDecode(id);
  switch (section) {
    case 'requests':
      return decoded ? { page: 'request', id: decoded, params } : { page: 'requests', id: '', params };
    case 'sessions':
      return { page: 'session', id: decoded, params };
    case 'analytics':
      return { page: 'analytics', id: '', params };
    case 'alerts':
      return { page: 'alerts', id: '', params };
    default:
      return { page: 'requests', id: '', params };
  }
}

/** The hash of a page: link('request', id, params) → #/requests/<id>?… */
export function link(page: Page, id = '', params?: URLSearchParams): string {
  const section = page === 'request' ? 'requests' : page === 'session' ? 'sessions' : page;
  const q = params && [...params.keys()].length ? '?' + params.toString() : '';
  return `#/${section}${id ? '/' + encodeURIComponent(id) : ''}${q}`;
}

export function go(href: string): void {
  if (location.hash !== href) location.hash = href;
}

function splitOnce(s: string, sep: string): [string, string?] {
  const i = s.indexOf(sep);
  return i < 0 ? [s] : [s.slice(0, i), s.slice(i + 1)];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
