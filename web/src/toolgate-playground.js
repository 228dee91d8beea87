// <toolgate-playground>: a policy playground for toolgate, entirely in the
// browser. The policy is compiled by the WebAssembly core as you type; calls
// are decided against in-memory counter and approval stores on a simulated
// clock. Every piece of data is rendered as text (textContent / DOM APIs,
// never innerHTML), and nothing is sent to any server.
//
// This file is the element: its attributes, lifecycle and public API, the
// toolbar, loading (share link, policy, policy-src, preset), the check that
// follows each edit, and the wiring between the parts, each in its own file:
//   editor.js         the policy editor and its diagnostics
//   composer.js       the call composer (fields -> a call)
//   session.js        the simulated session (stores, timeline, chart data)
//   decision-view.js  the decision panel (trace-view.js: its "Why")
//   session-view.js   counters, chart and timeline panels
//   tests-panel.js    the policy tests
//   replay-panel.js   replay of recorded calls
//   scan-panel.js     scan and pins of tools/list captures
//   share.js, presets.js, dom.js, format.js, styles.js
import wasmUrl from '../../wasm/dist/toolgate_core.wasm?url';
import { PolicyError, loadToolgate } from '../../wasm/index.js';
import { CallComposer } from './composer.js';
import { DecisionPanel } from './decision-view.js';
import { adoptStyles, h } from './dom.js';
import { LARGE_DOC, PolicyEditor } from './editor.js';
import { DEFAULT_PRESET, PRESETS } from './presets.js';
import { ReplayPanel } from './replay-panel.js';
import { PinsPanel, ScanPanel } from './scan-panel.js';
import { DEFAULT_CLOCK, DEFAULT_NOW, SimulatedSession } from './session.js';
import { CountersPanel, TimelinePanel } from './session-view.js';
import { decodeState, encodeState } from './share.js';
import { TestsPanel } from './tests-panel.js';
import { grantId, iso } from './format.js';

// The component module's exports, kept for pages and docs that import them.
export { meets } from './format.js';
export { offsetOf } from './editor.js';

// One WebAssembly instance per page, shared by every component.
let toolgatePromise = null;
export function sharedToolgate() {
  toolgatePromise ??= loadToolgate({ wasmUrl });
  toolgatePromise.catch(() => {
    toolgatePromise = null;
  });
  return toolgatePromise;
}

export class ToolgatePlayground extends HTMLElement {
  static observedAttributes = ['preset', 'policy', 'policy-src', 'calls', 'compact'];

  #toolgate = null;
  #initialized = false;
  #loadToken = 0;
  #ownHash = '';

  // The parts (built in #build).
  #editor;
  #composer;
  #decision;
  #countersPanel;
  #timelinePanel;
  #tests;
  #replay;
  #scan;
  #pins;
  #ui = {}; // the toolbar, notices and layout containers

  // Policy state.
  #policy = null; // the last policy that compiled
  #stale = false; // the editor's text does not compile
  #debounce = 0;
  #checkedText = null;

  // The interactive session and the decision shown.
  #session = new SimulatedSession();
  #latest = null; // { call, decision, pending, preview, approved? }
  #busy = false;
  #previewTimer = 0;
  #readyResolve;

  /** Resolves once the WASM is loaded and the first evaluation is rendered. */
  ready = new Promise((resolve) => {
    this.#readyResolve = resolve;
  });

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    adoptStyles(this.shadowRoot);
  }

  get compact() {
    return this.hasAttribute('compact') && this.getAttribute('compact') !== 'false';
  }

  /** Whether the URL fragment holds this component's state (default: on in full mode only). */
  get shareEnabled() {
    if (this.hasAttribute('share')) return this.getAttribute('share') !== 'false';
    return !this.compact;
  }

  /** The editor's current policy text. */
  get policyText() {
    return this.#editor?.text ?? '';
  }

  connectedCallback() {
    if (this.#initialized) return;
    this.#initialized = true;
    this.#build();
    this.#init();
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (!this.#initialized || oldValue === newValue) return;
    if (name === 'compact') {
      this.#arrange();
      return;
    }
    this.#loadFromAttributes();
  }

  // ------------------------------------------------------------ building

  #build() {
    const ui = this.#ui;
    const parseTime = (value) => this.#toolgate.parseTime(value);

    // Toolbar: presets, share.
    ui.preset = h('select', { id: 'preset', testid: 'preset', onchange: () => this.#loadPreset(ui.preset.value) });
    for (const [name, preset] of Object.entries(PRESETS)) ui.preset.append(h('option', { value: name, text: `${name} — ${preset.label}` }));
    ui.shareLink = h('input', { type: 'url', testid: 'share-link', class: 'share-link', readOnly: true, 'aria-label': 'Share link', hidden: true });
    ui.toolbar = h('div', { class: 'toolbar' },
      h('label', { for: 'preset' }, 'Preset', ui.preset),
      h('button', { type: 'button', title: 'Forget the counters, approvals and timeline of this session', onclick: () => this.#resetSessionAndRender() }, 'Reset counters'),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', testid: 'share', onclick: () => this.#share() }, 'Share'),
      ui.shareLink);
    ui.notices = h('div', { class: 'notices', role: 'status', 'aria-live': 'polite' });

    this.#editor = new PolicyEditor({ onEdit: () => this.#scheduleCheck() });
    this.#composer = new CallComposer({
      parseTime,
      onSend: () => this.#sendOnce(),
      onSendMany: () => this.#sendMany(),
      onChange: () => this.#schedulePreview(),
      onMonitorChange: () => this.#renderSession(),
    });
    this.#decision = new DecisionPanel();
    this.#countersPanel = new CountersPanel();
    this.#timelinePanel = new TimelinePanel();
    this.#tests = new TestsPanel({
      policy: () => this.#policy,
      latest: () => this.#latest,
      timeOf: (value, fallback) => this.#timeOf(value, fallback),
      onNotice: (message) => this.#notice(message),
    });
    this.#replay = new ReplayPanel({ policy: () => this.#policy, parseTime });
    this.#scan = new ScanPanel({ onApply: (text, firstTool) => this.#applyScan(text, firstTool) });
    this.#pins = new PinsPanel();

    ui.side = h('div', { class: 'side' });
    ui.grid = h('div', { class: 'grid' }, this.#editor.panel, ui.side);
    ui.main = h('div', { class: 'tg' });
    this.shadowRoot.append(ui.main);
    this.#arrange();
    this.#editor.mount(this.shadowRoot);
  }

  // Places the sections for full or compact mode.
  #arrange() {
    const ui = this.#ui;
    const compact = this.compact;
    ui.main.classList.toggle('compact', compact);
    ui.main.replaceChildren(...(compact
      ? [ui.notices, ui.grid]
      : [ui.toolbar, ui.notices, ui.grid, this.#tests.panel, this.#replay.panel, this.#scan.panel, this.#pins.panel]));
    ui.side.replaceChildren(...(compact
      ? [this.#composer.panel, this.#decision.panel]
      : [this.#composer.panel, this.#decision.panel, this.#countersPanel.panel, this.#timelinePanel.panel]));
  }

  // ------------------------------------------------------------ loading

  async #init() {
    try {
      this.#toolgate = await sharedToolgate();
    } catch (error) {
      this.#notice(`The WebAssembly core failed to load: ${error?.message ?? error}`);
      this.#editor.setStatus('error', 'engine failed to load');
      return;
    }
    if (this.shareEnabled) {
      window.addEventListener('hashchange', () => {
        if (location.hash.startsWith('#s=') && location.hash !== this.#ownHash) this.#loadFromAttributes();
      });
    }
    await this.#loadFromAttributes();
    this.setAttribute('ready', '');
    this.#readyResolve(this);
  }

  // Initial state: a share link (if enabled), else policy / policy-src / preset attributes.
  async #loadFromAttributes() {
    const token = ++this.#loadToken;
    if (this.shareEnabled && location.hash.startsWith('#s=')) {
      try {
        const state = await decodeState(location.hash.slice(3));
        if (token !== this.#loadToken) return;
        await this.#applyState(state);
        return;
      } catch (error) {
        if (token !== this.#loadToken) return;
        this.#notice(`This share link is broken: ${error?.message ?? error}; loaded the default preset.`);
        await this.#loadPreset(this.getAttribute('preset') in PRESETS ? this.getAttribute('preset') : DEFAULT_PRESET);
        return;
      }
    }
    const calls = this.#callsAttribute();
    if (this.hasAttribute('policy')) {
      await this.#loadPolicy(this.getAttribute('policy'), calls ?? [], null);
      return;
    }
    if (this.hasAttribute('policy-src')) {
      const src = this.getAttribute('policy-src');
      try {
        const response = await fetch(new URL(src, document.baseURI));
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const text = await response.text();
        if (token !== this.#loadToken) return;
        await this.#loadPolicy(text, calls ?? [], null);
        return;
      } catch (error) {
        if (token !== this.#loadToken) return;
        this.#notice(`Could not load the policy from ${src}: ${error?.message ?? error}; loaded the default preset.`);
      }
    }
    const preset = this.getAttribute('preset');
    if (preset && !(preset in PRESETS)) this.#notice(`Unknown preset "${preset}"; loaded the default preset.`);
    const name = preset in PRESETS ? preset : DEFAULT_PRESET;
    await this.#loadPreset(name, calls);
  }

  #callsAttribute() {
    if (!this.hasAttribute('calls')) return null;
    try {
      const calls = JSON.parse(this.getAttribute('calls'));
      if (!Array.isArray(calls)) throw new Error('not a JSON array');
      return calls;
    } catch (error) {
      this.#notice(`The calls attribute is not a JSON array of calls: ${error.message}`);
      return null;
    }
  }

  async #loadPreset(name, calls = null) {
    const preset = PRESETS[name];
    if (!preset) return;
    await this.#loadPolicy(preset.policy, calls ?? preset.calls, name);
  }

  // Replaces the policy, the tests and the session; fills the composer from the first call.
  async #loadPolicy(text, tests, presetName) {
    this.#ui.preset.value = presetName ?? '';
    if (!presetName) this.#ui.preset.selectedIndex = -1;
    this.#tests.lines = tests.map((line) => (line && typeof line === 'object' ? structuredClone(line) : line));
    const first = this.#tests.lines.find((line) => line && typeof line === 'object' && typeof line.tool === 'string');
    this.#composer.fill(first ? {
      tool: first.tool,
      arguments: JSON.stringify(first.arguments ?? {}),
      grant: grantId(first.grant),
      grantAttributes: JSON.stringify(first.grant && typeof first.grant === 'object' ? Object.fromEntries(Object.entries(first.grant).filter(([k]) => k !== 'id')) : {}),
      clock: DEFAULT_CLOCK,
    } : { tool: '', arguments: '{}', grant: 'alice', grantAttributes: '{}', clock: DEFAULT_CLOCK });
    await this.#replaceSessionAndText(text);
  }

  async #applyState(state) {
    const composer = state.composer ?? {};
    this.#ui.preset.value = typeof state.preset === 'string' && state.preset in PRESETS ? state.preset : '';
    if (!(state.preset in PRESETS)) this.#ui.preset.selectedIndex = -1;
    this.#tests.lines = Array.isArray(state.tests) ? state.tests : [];
    this.#composer.fill({
      tool: String(composer.tool ?? ''),
      arguments: String(composer.arguments ?? '{}'),
      grant: String(composer.grant ?? ''),
      grantAttributes: String(composer.grantAttributes ?? '{}'),
      clock: String(composer.clock ?? DEFAULT_CLOCK),
      repeatCount: composer.repeatCount,
      repeatSpan: composer.repeatSpan,
    });
    await this.#replaceSessionAndText(state.policy);
  }

  // A fresh session, then the new text in the editor, checked at once.
  async #replaceSessionAndText(text) {
    this.#session = new SimulatedSession();
    this.#latest = null;
    this.#timelinePanel.render(this.#session.timeline);
    this.#countersPanel.renderChart(this.#session.series);
    clearTimeout(this.#debounce);
    this.#editor.setText(text);
    await this.#check({ force: true });
  }

  // ------------------------------------------------------------ checking

  #scheduleCheck() {
    clearTimeout(this.#debounce);
    const length = this.#editor.length;
    const delay = length > LARGE_DOC ? 500 : length > 100_000 ? 150 : 30;
    if (length > 100_000) this.#editor.setStatus('checking', 'checking…');
    this.#debounce = setTimeout(() => this.#check(), delay);
  }

  // Compiles the editor's text once, shows its diagnostics, and re-runs the
  // tests (and the preview) against it; an invalid text keeps the last results, marked stale.
  async #check({ force = false } = {}) {
    clearTimeout(this.#debounce);
    const tg = this.#toolgate;
    if (!tg) return;
    const text = this.#editor.text;
    if (!force && text === this.#checkedText) return;
    this.#checkedText = text;

    // Compile + diagnostics + tests, timed: the per-keystroke budget (16 ms for a
    // 500-line policy with 50 tests) is about this span, not the debounce.
    const started = performance.now();
    let policy = null;
    let diagnostics;
    try {
      policy = tg.compile(text);
      diagnostics = policy.diagnostics;
    } catch (error) {
      diagnostics = error instanceof PolicyError ? error.diagnostics
        : [{ code: 'engine_error', severity: 'error', message: String(error?.message ?? error), pointer: '', line: 0, column: 0 }];
      if (!(error instanceof PolicyError)) await tg.ready().catch(() => {});
    }
    if (this.#editor.text !== text) return; // edited meanwhile: the next check follows
    this.#editor.showDiagnostics(diagnostics);

    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    if (policy) {
      const previous = this.#policy;
      this.#policy = policy;
      this.#stale = false;
      if (previous && previous !== policy) previous.dispose();
      // Tool names for the composer: every "tools" key and "hide" entry, as
      // the compiled plan lists them (policy.names), names before globs.
      this.#composer.setToolNames([...policy.names.exact, ...policy.names.globs]);
      const warnings = diagnostics.length - errors;
      this.#editor.setStatus('ok', warnings ? `valid · ${warnings} warning${warnings > 1 ? 's' : ''}` : 'valid');
    } else {
      this.#stale = true;
      this.#editor.setStatus('error', `${errors || diagnostics.length} error${(errors || diagnostics.length) > 1 ? 's' : ''}`);
    }
    this.#decision.markStale(this.#stale);
    this.#tests.markStale(this.#stale);
    if (!policy) return;
    this.#highlightRule({ scroll: false });
    await this.#tests.run();
    if (!this.#latest || this.#latest.preview) await this.#preview();
    this.lastEvaluationMs = performance.now() - started;
  }

  // ------------------------------------------------------------ calls

  #schedulePreview() {
    if (this.#latest && !this.#latest.preview) return;
    clearTimeout(this.#previewTimer);
    this.#previewTimer = setTimeout(() => this.#preview(), 50);
  }

  // What the composer's call would get now, without charging anything.
  async #preview() {
    const policy = this.#policy;
    if (!policy || (this.#latest && !this.#latest.preview)) return;
    let call;
    try {
      call = this.#composer.compose(this.#composer.clockMs());
    } catch (error) {
      this.#composer.setError(error.message);
      return;
    }
    this.#composer.setError('');
    const previewed = await this.#session.preview(policy, call);
    if (this.#latest && !this.#latest.preview) return;
    this.#latest = previewed;
    const rows = previewed.pending ? await this.#session.counterRows(previewed.pending) : [];
    this.#renderDecision();
    this.#countersPanel.renderCounters(rows, true);
  }

  // The clock, and a check that the composer's fields make a call; null (and the reason shown) when not.
  #composedNow() {
    try {
      const now = this.#composer.clockMs();
      this.#composer.compose(now);
      return now;
    } catch (error) {
      this.#composer.setError(error.message);
      return null;
    }
  }

  async #sendOnce() {
    if (this.#busy) return;
    const now = this.#composedNow();
    if (now === null) return;
    this.#busy = true;
    try {
      await this.#send([now]);
    } finally {
      this.#busy = false;
    }
  }

  async #sendMany() {
    if (this.#busy) return;
    const now = this.#composedNow();
    if (now === null) return;
    let times;
    try {
      times = this.#composer.repeatTimes(now);
    } catch (error) {
      this.#composer.setError(error.message);
      return;
    }
    this.#busy = true;
    try {
      await this.#send(times);
      this.#composer.clock.value = iso(times[times.length - 1]);
    } finally {
      this.#busy = false;
    }
  }

  // Sends the composer's call at each time, in order, through the session's stores.
  async #send(times) {
    const policy = this.#policy;
    if (!policy) {
      this.#composer.setError('The policy has errors and no earlier version compiled: fix it first.');
      return;
    }
    this.#composer.setError('');
    const session = this.#session;
    let last = null;
    for (const now of times) {
      const call = this.#composer.compose(now);
      last = await session.send(policy, call, now, { monitored: this.#monitored(call) });
      const { trace: _trace, ...detail } = last.decision;
      this.dispatchEvent(new CustomEvent('decision', { detail, bubbles: true, composed: true }));
    }
    this.#latest = last;
    this.#renderSession();
    this.#highlightRule({ scroll: true });
  }

  async #approve() {
    const decision = this.#latest?.decision;
    if (!decision?.approval_id) return;
    let now;
    try {
      now = this.#composer.clockMs();
    } catch (error) {
      this.#composer.setError(error.message);
      return;
    }
    await this.#session.approve(decision.approval_id, now);
    this.#latest = { ...this.#latest, approved: true };
    this.#renderSession();
  }

  async #resetSessionAndRender() {
    this.#session = new SimulatedSession();
    this.#latest = null;
    this.#renderSession();
    await this.#preview();
  }

  // Whether a call is shown as not enforced: the checkbox, or the policy's
  // own "mode": "monitor" (document or entry).
  #monitored(call) {
    if (this.#composer.monitor.checked) return true;
    try {
      return typeof call?.tool === 'string' && this.#policy?.isMonitored(call.tool) === true;
    } catch {
      return false;
    }
  }

  #timeOf(value, fallback) {
    if (value === undefined || value === null || value === '') return fallback;
    const ms = this.#toolgate.parseTime(value);
    return Number.isFinite(ms) ? ms : fallback;
  }

  // ------------------------------------------------------------ rendering

  async #renderSession() {
    this.#renderDecision();
    const latest = this.#latest;
    this.#countersPanel.renderCounters(latest?.pending ? await this.#session.counterRows(latest.pending) : [], Boolean(this.#latest));
    this.#timelinePanel.render(this.#session.timeline);
    this.#countersPanel.renderChart(this.#session.series);
  }

  #renderDecision() {
    const latest = this.#latest;
    this.#decision.render(latest, {
      monitored: latest ? this.#monitored(latest.call) : false,
      at: latest ? this.#timeOf(latest.call.now, DEFAULT_NOW) : NaN,
      onApprove: () => this.#approve(),
      onShowRule: () => this.#highlightRule({ scroll: true, focus: true }),
    });
  }

  // Highlights the latest decision's rule in the editor (and scrolls to it when asked).
  #highlightRule({ scroll, focus = false }) {
    if (!this.#toolgate) return;
    this.#editor.highlightRule(this.#latest?.decision?.rule, (text, rule) => this.#toolgate.locate(text, rule), { scroll, focus });
  }

  // ------------------------------------------------------------ scan, share and notices

  async #applyScan(text, firstTool) {
    await this.#loadPolicy(text, [], null);
    this.#composer.tool.value = firstTool;
    this.#composer.arguments.value = '{}';
    await this.#preview();
  }

  #state() {
    return {
      v: 1,
      preset: this.#ui.preset.value || undefined,
      policy: this.policyText,
      tests: this.#tests.lines,
      composer: this.#composer.values(),
    };
  }

  async #share() {
    const ui = this.#ui;
    let value;
    try {
      value = await encodeState(this.#state());
    } catch (error) {
      this.#notice(`Could not make a share link: ${error?.message ?? error}`);
      return;
    }
    const url = new URL(location.href);
    url.hash = `s=${value}`;
    if (this.shareEnabled) {
      this.#ownHash = url.hash;
      history.replaceState(history.state, '', url.href);
    }
    ui.shareLink.value = url.href;
    ui.shareLink.hidden = false;
    ui.shareLink.focus();
    ui.shareLink.select();
    if (url.href.length > 8000) this.#notice(`The share link is ${url.href.length} characters long; some browsers and chat apps cut long links.`);
  }

  #notice(message) {
    const dismiss = h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss' }, '×');
    const box = h('div', { class: 'notice-box' }, h('span', { testid: 'notice', text: message }), dismiss);
    dismiss.addEventListener('click', () => box.remove());
    this.#ui.notices.append(box);
  }
}

if (!customElements.get('toolgate-playground')) customElements.define('toolgate-playground', ToolgatePlayground);
