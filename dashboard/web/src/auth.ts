// The API-key prompt: shown when the API answers 401. The key is kept in
// sessionStorage (this tab only) and sent as Authorization: Bearer.

import { apiKey, setApiKey } from './api';
import { h } from './dom';

let open: HTMLElement | null = null;

/** Asks for the key once (several failing calls share one prompt). */
export function promptForKey(message: string, onKey: () => void): void {
  if (open) return;
  const input = h('input', {
    type: 'password',
    name: 'api-key',
    autocomplete: 'off',
    placeholder: 'API key',
    'aria-label': 'API key',
    required: true,
  });
  const form = h(
    'form',
    { class: 'key-form' },
    h('h2', null, 'API key required'),
    h('p', null, apiKey() ? 'The server did not accept this key. ' : 'This Tollgate protects its API with a key. ', 'It is kept for this browser tab only.'),
    h('p', { class: 'muted small' }, message),
    input,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary' }, 'Use key')),
  );
  const overlay = h('div', { class: 'overlay', 'data-key-prompt': '' }, form);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setApiKey(input.value.trim());
    overlay.remove();
    open = null;
    onKey();
  });
  document.body.append(overlay);
  open = overlay;
  input.focus();
}

/** The header's key indicator, with a way to forget the key. */
export function keyStatus(onForget: () => void): HTMLElement {
  if (!apiKey()) return h('span');
  return h(
    'span',
    { class: 'key-status' },
    'API key set · ',
    h(
      'button',
      {
        type: 'button',
        class: 'link',
        onclick: () => {
          setApiKey('');
          onForget();
        },
      },
      'forget',
    ),
  );
}
