// Calls to Tollgate's HTTP API on the dashboard's own origin. The API key,
// when the server has one, is kept for the browser tab only
// (sessionStorage) and sent as `Authorization: Bearer`.

const KEY_STORAGE = 'tollgate.apiKey';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The server wants an API key (HTTP 401): the shell asks for one. */
export class KeyRequired extends HttpError {}

// Where sessionStorage is disabled the key lasts until the page reloads.
let memoryKey = '';

export function apiKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? memoryKey;
  } catch {
    return memoryKey;
  }
}

export function setApiKey(key: string): void {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: memoryKey below
  }
  memoryKey = key;
}

async function call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: 'same-origin',
  });
  if (res.ok) return res;
  const message = await errorMessage(res);
  if (res.status === 401) throw new KeyRequired(401, message);
  throw new HttpError(res.status, message);
}

/** The API answers errors as {"error": {"code", "message"}}; others as text. */
async function errorMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body?.error?.message) return String(body.error.message);
  } catch {
    // not JSON
  }
  return text.trim() || `HTTP ${res.status}`;
}

export async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await call('GET', path, undefined, signal);
  return (await res.json()) as T;
}

export async function postJSON<T>(path: string, body: unknown): Promise<T> {
  const res = await call('POST', path, body);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export async function del(path: string): Promise<void> {
  await call('DELETE', path);
}
