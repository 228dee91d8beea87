// The call composer: the "Call" panel's fields (tool, arguments, grant id
// and attributes, an OAuth access token decoded in the page, the simulated
// clock), the Send / Send N times buttons and the monitor checkbox. It turns
// its fields into a call, or a readable reason why they do not make one; the
// element decides what sending means.
import { h } from './dom.js';
import { iso } from './format.js';
import { DEFAULT_CLOCK } from './session.js';
import { decodeJwtClaims, grantFromClaims } from '../../worker/claims.js';

const MAX_REPEAT = 1000;

export class CallComposer {
  #parseTime;
  #onChange;

  /**
   * `parseTime`: Toolgate.parseTime (RFC 3339 -> epoch ms or NaN).
   * `onSend` / `onSendMany`: the buttons (and Enter); `onChange`: a field
   * changed (the preview follows); `onMonitorChange`: the checkbox.
   */
  constructor({ parseTime, onSend, onSendMany, onChange, onMonitorChange }) {
    this.#parseTime = parseTime;
    this.#onChange = onChange;
    this.tool = h('input', { id: 'tool', testid: 'tool', list: 'tool-names', autocomplete: 'off', spellcheck: 'false', placeholder: 'run' });
    this.toolNames = h('datalist', { id: 'tool-names' });
    this.arguments = h('textarea', { id: 'arguments', testid: 'arguments', rows: 3, spellcheck: 'false', value: '{}' });
    this.grant = h('input', { id: 'grant', testid: 'grant', autocomplete: 'off', spellcheck: 'false', placeholder: 'anonymous' });
    this.grantAttributes = h('textarea', { id: 'grant-attributes', testid: 'grant-attributes', rows: 1, spellcheck: 'false', value: '{}' });
    // An access token pasted here is decoded in the page (never verified, never
    // sent anywhere) and fills the grant as the proxy would (worker/claims.js).
    this.jwt = h('textarea', { id: 'jwt', testid: 'jwt', rows: 1, spellcheck: 'false', autocomplete: 'off', placeholder: 'eyJhbGciOi… (optional)' });
    this.jwtNote = h('div', { class: 'hint', testid: 'jwt-note', role: 'status', text: 'Decoded in this page only; never sent anywhere.' });
    this.jwt.addEventListener('input', () => this.#fillGrantFromJwt());
    this.clock = h('input', { id: 'clock', testid: 'clock', autocomplete: 'off', spellcheck: 'false', value: DEFAULT_CLOCK });
    const step = (ms, label) => h('button', { type: 'button', class: 'small', 'aria-label': `Advance the clock by ${label}`, onclick: () => this.#advanceClock(ms) }, `+${label}`);
    this.send = h('button', { type: 'button', class: 'primary', testid: 'send', onclick: onSend }, 'Send');
    this.repeatCount = h('input', { id: 'repeat-count', testid: 'repeat-count', type: 'number', min: 1, max: MAX_REPEAT, step: 1, value: '12' });
    this.repeatSpan = h('input', { id: 'repeat-span', testid: 'repeat-span', type: 'number', min: 0, step: 'any', value: '60' });
    this.sendMany = h('button', { type: 'button', testid: 'send-many', onclick: onSendMany }, 'Send N times');
    this.error = h('div', { class: 'error-text', role: 'alert', testid: 'composer-error' });
    // Monitor mode as the proxy runs it: decided and counted the same, shown as not enforced.
    this.monitor = h('input', { id: 'monitor', testid: 'monitor', type: 'checkbox', onchange: onMonitorChange });
    for (const input of [this.tool, this.arguments, this.grant, this.grantAttributes, this.clock]) {
      input.addEventListener('input', () => onChange());
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && (event.ctrlKey || event.metaKey || input.tagName === 'INPUT')) {
          event.preventDefault();
          onSend();
        }
      });
    }
    this.panel = h('section', { class: 'panel composer', 'aria-label': 'Call composer' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Call' }), h('span', { class: 'spacer' }), h('span', { class: 'hint', text: 'Enter / Ctrl+Enter sends' })),
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'tool', text: 'Tool' }), this.tool, this.toolNames),
        h('div', { class: 'field' }, h('label', { for: 'grant', text: 'Grant id' }), this.grant)),
      h('div', { class: 'field' }, h('label', { for: 'arguments', text: 'Arguments (JSON object)' }), this.arguments),
      h('div', { class: 'field' }, h('label', { for: 'grant-attributes', text: 'Grant attributes (JSON object, read as grant.<name>)' }), this.grantAttributes),
      h('div', { class: 'field' }, h('label', { for: 'jwt', text: 'Or paste an OAuth access token (JWT): sub becomes the grant id, its claims the attributes' }), this.jwt, this.jwtNote),
      h('div', { class: 'field' },
        h('label', { for: 'clock', text: 'Simulated clock (RFC 3339)' }),
        h('div', { class: 'clock-row' }, this.clock, step(1000, '1s'), step(60_000, '1m'), step(3_600_000, '1h'))),
      h('div', { class: 'row' },
        this.send,
        h('div', { class: 'field' }, h('label', { for: 'repeat-count', text: 'Count' }), this.repeatCount),
        h('div', { class: 'field' }, h('label', { for: 'repeat-span', text: 'Over (seconds)' }), this.repeatSpan),
        this.sendMany),
      h('label', { for: 'monitor', class: 'monitor-toggle' }, this.monitor, 'Monitor mode: decide and audit, never refuse (the call would be forwarded)'),
      this.error);
  }

  /** Shows why the composer's call cannot be sent ('' clears it). */
  setError(message) {
    this.error.textContent = message;
  }

  /** The tool names offered as suggestions (the compiled plan's names). */
  setToolNames(names) {
    this.toolNames.replaceChildren(...names.slice(0, 500).map((name) => h('option', { value: name })));
  }

  /** Fills the fields (a preset's first call, a share link); repeat fields only when given. */
  fill(fields) {
    this.tool.value = fields.tool;
    this.arguments.value = fields.arguments;
    this.grant.value = fields.grant;
    this.grantAttributes.value = fields.grantAttributes;
    this.clock.value = fields.clock;
    if (fields.repeatCount !== undefined) this.repeatCount.value = String(fields.repeatCount);
    if (fields.repeatSpan !== undefined) this.repeatSpan.value = String(fields.repeatSpan);
    this.error.textContent = '';
  }

  /** The fields as a share link keeps them. */
  values() {
    return {
      tool: this.tool.value,
      arguments: this.arguments.value,
      grant: this.grant.value,
      grantAttributes: this.grantAttributes.value,
      clock: this.clock.value,
      repeatCount: this.repeatCount.value,
      repeatSpan: this.repeatSpan.value,
    };
  }

  /** The composer's call at `nowMs`, or throws an Error with a readable reason. */
  compose(nowMs) {
    const tool = this.tool.value;
    let args;
    try {
      args = JSON.parse(this.arguments.value.trim() || '{}');
    } catch (error) {
      throw new Error(`Arguments are not valid JSON: ${error.message}`);
    }
    let attributes;
    try {
      attributes = JSON.parse(this.grantAttributes.value.trim() || '{}');
    } catch (error) {
      throw new Error(`Grant attributes are not valid JSON: ${error.message}`);
    }
    if (!attributes || typeof attributes !== 'object' || Array.isArray(attributes)) throw new Error('Grant attributes must be a JSON object.');
    const id = this.grant.value.trim() || 'anonymous';
    const grant = Object.keys(attributes).length ? { ...attributes, id } : id;
    return { tool, arguments: args, grant, now: iso(nowMs) };
  }

  /** The simulated clock in epoch ms, or throws an Error with a readable reason. */
  clockMs() {
    const value = this.clock.value.trim();
    const ms = this.#parseTime(value);
    if (!Number.isFinite(ms)) throw new Error(`The clock "${value}" is not an RFC 3339 time such as ${DEFAULT_CLOCK}.`);
    return ms;
  }

  /** The times of "Send N times" from `now`: count calls spread over the span; throws a readable Error. */
  repeatTimes(now) {
    const count = Math.floor(Number(this.repeatCount.value));
    const span = Number(this.repeatSpan.value);
    if (!Number.isFinite(count) || count < 1 || count > MAX_REPEAT) throw new Error(`Count must be a whole number from 1 to ${MAX_REPEAT}.`);
    if (!Number.isFinite(span) || span < 0) throw new Error('The span must be a number of seconds, 0 or more.');
    return Array.from({ length: count }, (_, i) => now + Math.floor((i * span * 1000) / count));
  }

  #advanceClock(ms) {
    let now;
    try {
      now = this.clockMs();
    } catch (error) {
      this.error.textContent = error.message;
      return;
    }
    this.clock.value = iso(now + ms);
    this.error.textContent = '';
    this.#onChange();
  }

  #fillGrantFromJwt() {
    const text = this.jwt.value.trim();
    if (text === '') {
      this.jwtNote.textContent = 'Decoded in this page only; never sent anywhere.';
      return;
    }
    const claims = decodeJwtClaims(text);
    const grant = claims instanceof Error ? null : grantFromClaims(claims);
    if (!grant) {
      this.jwtNote.textContent = claims instanceof Error ? `Not a JWT: ${claims.message}.` : 'This token has no "sub" claim to name the grant.';
      return;
    }
    this.grant.value = grant.id;
    this.grantAttributes.value = JSON.stringify(grant.attributes);
    this.jwtNote.textContent = `Grant "${grant.id}" with ${Object.keys(grant.attributes).length} attributes (scope: ${grant.attributes.scope.join(' ') || 'none'}). Decoded in this page only, not verified, never sent.`;
    this.#onChange();
  }
}
