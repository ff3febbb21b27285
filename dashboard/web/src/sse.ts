// Streamed (SSE) responses, as Tollgate logs them (the raw event stream),
// reassembled into what the client finally saw.

export interface SSEEvent {
  event: string;
  data: string;
}

/** Parses an event stream into its events (comments and ids dropped). */
export function parseSSE(raw: string): SSEEvent[] {
  const events: SSEEvent[] = [];
  for (const block of raw.replace(/\r\n?/g, '\n').split(/\n\n+/)) {
    let event = '';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length) events.push({ event, data: data.join('\n') });
  }
  return events;
}

export function looksLikeSSE(body: string): boolean {
  return /^(data|event|id|retry):/m.test(body.slice(0, 512)) && !/^\s*[{[]/.test(body);
}

export interface Reassembled {
  text: string;
  /** Reasoning ("thinking") text, when the provider streamed it. */
  thinking: string;
  /** Tool or function call arguments, in call order. */
  toolCalls: { name: string; arguments: string }[];
  events: number;
}

/**
 * The text of an OpenAI chat or completions stream, an OpenAI Responses
 * stream, or an Anthropic Messages stream.
 */
export function reassemble(raw: string): Reassembled {
  const out: Reassembled = { text: '', thinking: '', toolCalls: [], events: 0 };
  const tools = new Map<string, { name: string; arguments: string }>();
  const tool = (key: string, name = '') => {
    let t = tools.get(key);
    if (!t) {
      t = { name, arguments: '' };
      tools.set(key, t);
    }
    if (name) t.name = name;
    return t;
  };
  for (const ev of parseSSE(raw)) {
    out.events++;
    if (ev.data === '[DONE]') continue;
    let d: any;
    try {
      d = JSON.parse(ev.data);
    } catch {
      continue;
    }
    const type: string = d?.type ?? ev.event;
    // OpenAI chat completions and completions.
    for (const c of Array.isArray(d?.choices) ? d.choices : []) {
      if (typeof c?.delta?.content === 'string') out.text += c.delta.content;
      if (typeof c?.delta?.reasoning_content === 'string') out.thinking += c.delta.reasoning_content;
      if (typeof c?.text === 'string') out.text += c.text;
      for (const tc of Array.isArray(c?.delta?.tool_calls) ? c.delta.tool_calls : []) {
        const t = tool(`chat:${c.index ?? 0}:${tc.index ?? 0}`, tc.function?.name);
        if (typeof tc.function?.arguments === 'string') t.arguments += tc.function.arguments;
      }
    }
    // Anthropic messages.
    if (type === 'content_block_start' && d.content_block?.type === 'tool_use') {
      tool(`msg:${d.index}`, d.content_block.name);
    }
    if (type === 'content_block_delta') {
      const delta = d.delta ?? {};
      if (delta.type === 'text_delta') out.text += delta.text ?? '';
      else if (delta.type === 'thinking_delta') out.thinking += delta.thinking ?? '';
      else if (delta.type === 'input_json_delta') tool(`msg:${d.index}`).arguments += delta.partial_json ?? '';
    }
    // OpenAI Responses API.
    if (type === 'response.output_text.delta' && typeof d.delta === 'string') out.text += d.delta;
    if (type === 'response.reasoning_summary_text.delta' && typeof d.delta === 'string') out.thinking += d.delta;
    if (type === 'response.function_call_arguments.delta' && typeof d.delta === 'string') {
      tool(`resp:${d.item_id ?? d.output_index}`).arguments += d.delta;
    }
  }
  out.toolCalls = [...tools.values()];
  return out;
}

/** The assistant text of a non-streamed response body, if it has one. */
export function responseText(body: string): string {
  let d: any;
  try {
    d = JSON.parse(body);
  } catch {
    return '';
  }
  const parts: string[] = [];
  for (const c of Array.isArray(d?.choices) ? d.choices : []) {
    if (typeof c?.message?.content === 'string') parts.push(c.message.content);
    else if (typeof c?.text === 'string') parts.push(c.text);
  }
  for (const b of Array.isArray(d?.content) ? d.content : []) {
    if (b?.type === 'text' && typeof b.text === 'string') parts.push(b.text);
  }
  for (const o of Array.isArray(d?.output) ? d.output : []) {
    for (const c of Array.isArray(o?.content) ? o.content : []) {
      if (c?.type === 'output_text' && typeof c.text === 'string') parts.push(c.text);
    }
  }
  return parts.join('\n\n');
}
