// A session's calls as a tree by session_path: "/plan/hotels" is a child of
// "/plan". Each node totals its own calls and its subtree's.

import type { RequestRecord } from './types';

export interface SessionNode {
  name: string; // last path segment, "/" for the root
  path: string; // full path, "/" for the root
  calls: RequestRecord[]; // calls made at exactly this path, oldest first
  children: SessionNode[];
  // Subtree totals.
  count: number;
  cost: number;
  latency: number;
  start: number; // earliest created_at (ms), Infinity when empty
}

export function buildTree(records: RequestRecord[]): SessionNode {
  const root = node('/', '/');
  const byPath = new Map<string, SessionNode>([['/', root]]);
  const sorted = [...records].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  for (const r of sorted) {
    const segs = (r.session_path || '/').split('/').filter(Boolean);
    let cur = root;
    let path = '';
    for (const s of segs) {
      path += '/' + s;
      let next = byPath.get(path);
      if (!next) {
        next = node(s, path);
        byPath.set(path, next);
        cur.children.push(next);
      }
      cur = next;
    }
    cur.calls.push(r);
  }
  total(root);
  return root;
}

function node(name: string, path: string): SessionNode {
  return { name, path, calls: [], children: [], count: 0, cost: 0, latency: 0, start: Infinity };
}

function total(n: SessionNode): void {
  n.count = n.calls.length;
  n.cost = n.calls.reduce((s, r) => s + r.cost_usd, 0);
  n.latency = n.calls.reduce((s, r) => s + r.latency_ms, 0);
  n.start = n.calls.length ? Date.parse(n.calls[0].created_at) : Infinity;
  for (const c of n.children) {
    total(c);
    n.count += c.count;
    n.cost += c.cost;
    n.latency += c.latency;
    n.start = Math.min(n.start, c.start);
  }
  // Children in the order the session reached them.
  n.children.sort((a, b) => a.start - b.start || a.path.localeCompare(b.path));
}
