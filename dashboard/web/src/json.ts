// Bodies as a person wants to read them: JSON pretty-printed and lightly
// coloured, anything else shown as it is.

import { h } from './dom';

/** Pretty JSON text, or null when s is not JSON. */
export function prettyJSON(s: string): string | null {
  const t = s.trim();
  if (!t || (t[0] !== '{' && t[0] !== '[')) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

// Strings (keys when followed by a colon), numbers, literals.
const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

/** A <pre> with the JSON's tokens wrapped in classed spans. */
export function jsonBlock(pretty: string): HTMLPreElement {
  const pre = h('pre', { class: 'code json' });
  let last = 0;
  for (const m of pretty.matchAll(TOKEN)) {
    const i = m.index ?? 0;
    if (i > last) pre.append(pretty.slice(last, i));
    if (m[1] !== undefined) {
      pre.append(h('span', { class: m[2] ? 'j-key' : 'j-str' }, m[1]));
      if (m[2]) pre.append(m[2]);
    } else if (m[3] !== undefined) {
      pre.append(h('span', { class: 'j-num' }, m[3]));
    } else {
      pre.append(h('span', { class: 'j-lit' }, m[4]));
    }
    last = i + m[0].length;
  }
  if (last < pretty.length) pre.append(pretty.slice(last));
  return pre;
}

/** A body: highlighted JSON when it parses, else the raw text. */
export function bodyBlock(body: string): HTMLElement {
  if (!body) return h('p', { class: 'muted' }, 'Not recorded (empty, or omitted with Helicone-Omit-*).');
  const pretty = prettyJSON(body);
  return pretty === null ? h('pre', { class: 'code raw' }, body) : jsonBlock(pretty);
}
