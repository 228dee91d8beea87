// <toolgate-playground>: a policy playground for toolgate, entirely in the
// browser. The policy is compiled by the WebAssembly core as you type; calls
// are decided against in-memory counter and approval stores on a simulated
// clock. Every piece of data is rendered as text (textContent / DOM APIs,
// never innerHTML), and nothing is sent to any server.
import { EditorView, basicSetup } from 'codemirror';
import { EditorState, StateEffect, StateField } from '@codemirror/state';
import { Decoration, hoverTooltip } from '@codemirror/view';
import { json, jsonLanguage } from '@codemirror/lang-json';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { jsonCompletion, jsonSchemaHover, stateExtensions } from 'codemirror-json-schema';
import policySchema from '../../schema/policy.schema.json';
import wasmUrl from '../../wasm/dist/toolgate_core.wasm?url';
import {
  MemoryApprovalStore,
  MemoryCounterStore,
  PolicyError,
  estimateCount,
  loadToolgate,
} from '../../wasm/index.js';
import { ReplayInputError, readRecords, replay } from '../../lib/replay.js';
import { DEFAULT_PRESET, PRESETS } from './presets.js';
import { decodeJwtClaims, grantFromClaims } from '../../worker/claims.js';
import { decodeState, encodeState } from './share.js';
import { css } from './styles.js';

// One WebAssembly instance per page, shared by every component.
let toolgatePromise = null;
export function sharedToolgate() {
  toolgatePromise ??= loadToolgate({ wasmUrl });
  toolgatePromise.catch(() => {
    toolgatePromise = null;
  });
  return toolgatePromise;
}

const DEFAULT_CLOCK = '2026-01-01T00:00:00Z';
const DEFAULT_NOW = Date.parse(DEFAULT_CLOCK);
const MAX_REPEAT = 1000;
const MAX_TIMELINE_RENDERED = 300;
const MAX_DIAGNOSTICS_RENDERED = 200;
const LARGE_DOC = 1_000_000; // above this: longer debounce, no live relocation of the rule
const COLORS = ['#2456c9', '#c2410c', '#0f766e', '#9333ea', '#be123c', '#4d7c0f'];
const svgNS = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------- helpers

/** Creates an element. Strings become text nodes; no HTML is ever parsed. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = value;
    else if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'readOnly' || key === 'disabled') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(svgNS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** One step of a decision trace (Policy.explain) as a line of text. */
function traceText(step) {
  const value = (v) => compactJson(v, 60);
  switch (step.step) {
    case 'hide': return 'hidden: the tool matches a hide entry';
    case 'entry': return step.entry === null ? `no tools entry: the default (${step.default}) decides` : `entry ${JSON.stringify(step.entry)} matched`;
    case 'action': return `action ${step.action}`;
    case 'args': return step.valid ? 'arguments match the schema' : `arguments do not match the schema: ${step.problem}`;
    case 'require':
    case 'deny_if':
      return `${step.step} ${step.holds ? 'holds' : 'does not hold'}: ${step.conditions.map((c) => `${c.path} ${c.op} ${value(c.value)} (read ${'actual' in c ? value(c.actual) : 'nothing'}: ${c.error ? `error, ${c.error}` : c.holds ? 'true' : 'false'})`).join('; ')}`;
    case 'limit': return `limit: ${Math.round(step.count * 100) / 100} counted + ${step.cost} ≤ ${step.max}? ${step.admitted ? 'yes' : 'no'}`;
    case 'approval': return step.approved ? 'approved by a human' : 'waits for a human\'s approval';
    default: return compactJson(step, 120);
  }
}

/** RFC 3339 text of epoch ms, without ".000" when the milliseconds are zero. */
function iso(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  try {
    return new Date(ms).toISOString().replace('.000Z', 'Z');
  } catch {
    return String(ms);
  }
}

function shortTime(ms) {
  const text = iso(ms);
  return text.length > 11 ? text.slice(11) : text;
}

function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${+s.toFixed(1)} s`;
  if (s < 7200) return `${+(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} d`;
}

function compactJson(value, max = 140) {
  let text;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function grantId(grant) {
  if (grant === undefined) return 'anonymous';
  if (typeof grant === 'string') return grant;
  if (grant && typeof grant === 'object') return String(grant.id ?? '');
  return String(grant);
}

/** Does a decision meet an "expect" (as `toolgate eval` reads it)? */
export function meets(expect, decision) {
  if (typeof expect === 'string') return decision.decision === expect || decision.code === expect;
  if (expect && typeof expect === 'object') {
    return Object.entries(expect).every(([key, value]) => JSON.stringify(decision[key]) === JSON.stringify(value));
  }
  return false;
}

function expectText(expect) {
  if (expect === undefined) return '—';
  if (typeof expect === 'string') return expect;
  if (expect && typeof expect === 'object') {
    return Object.entries(expect).map(([k, v]) => (k === 'decision' || k === 'code' ? String(v) : `${k}=${compactJson(v, 60)}`)).join(' · ');
  }
  return compactJson(expect);
}

/** Document offset of a 1-based line and a 1-based column counted in code points. */
export function offsetOf(doc, line, column) {
  if (!Number.isFinite(line) || line < 1) return 0;
  if (line > doc.lines) return doc.length;
  const info = doc.line(line);
  if (!Number.isFinite(column) || column <= 1) return info.from;
  const text = info.text;
  let i = 0;
  for (let cp = 1; cp < column && i < text.length; cp += 1) {
    i += text.codePointAt(i) > 0xffff ? 2 : 1;
  }
  return info.from + i;
}

// The end of the JSON token starting at `pos` (a string, a number, a literal, a bracket).
function tokenEnd(doc, pos) {
  const info = doc.lineAt(pos);
  const text = info.text;
  let i = pos - info.from;
  if (i >= text.length) return pos;
  if (text[i] === '"') {
    i += 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    return info.from + Math.min(i + 1, text.length);
  }
  let j = i;
  while (j < text.length && /[\w.+-]/.test(text[j])) j += 1;
  return info.from + (j === i ? i + 1 : j);
}

// Line decoration of the deciding rule.
const setRuleHighlight = StateEffect.define();
const ruleHighlightField = StateField.define({
  create: () => Decoration.none,
  update(value, tr) {
    let decorations = value.map(tr.changes);
    for (const effect of tr.effects) {
      if (!effect.is(setRuleHighlight)) continue;
      if (effect.value === null) {
        decorations = Decoration.none;
      } else {
        const { from, to } = effect.value;
        const line = tr.state.doc.lineAt(from);
        const ranges = [Decoration.line({ class: 'tg-rule-highlight' }).range(line.from)];
        if (to > from) ranges.push(Decoration.mark({ class: 'tg-rule-highlight tg-rule-mark' }).range(from, Math.min(to, line.to)));
        decorations = Decoration.set(ranges, true);
      }
    }
    return decorations;
  },
  provide: (field) => EditorView.decorations.from(field),
});

// Schema completion and hover, skipped on huge documents (they parse the whole text).
function guardedCompletion() {
  const complete = jsonCompletion();
  return (context) => (context.state.doc.length > 300_000 ? null : complete(context));
}
function guardedHover() {
  const hover = jsonSchemaHover();
  return (view, pos, side) => (view.state.doc.length > 300_000 ? null : hover(view, pos, side));
}

let styleSheet = null;
function adoptStyles(root) {
  if ('adoptedStyleSheets' in Document.prototype && typeof CSSStyleSheet === 'function' && 'replaceSync' in CSSStyleSheet.prototype) {
    styleSheet ??= (() => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      return sheet;
    })();
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, styleSheet];
  } else {
    root.append(h('style', { text: css }));
  }
}

// ---------------------------------------------------------------- component

export class ToolgatePlayground extends HTMLElement {
  static observedAttributes = ['preset', 'policy', 'policy-src', 'calls', 'compact'];

  #toolgate = null;
  #view = null;
  #ui = {};
  #connected = false;
  #initialized = false;
  #loadToken = 0;

  // Policy state.
  #policy = null; // the last policy that compiled
  // A pending evaluation -> policy.limits of the policy that made it (the
  // counters panel may show a call made before the policy was edited).
  #limitsOf = new WeakMap();
  #policyText = ''; // its text
  #stale = false; // the editor's text does not compile
  #debounce = 0;
  #checkedText = null;

  // Policy tests: JSON Lines objects (calls with "expect", or {"approve": id}).
  #tests = [];
  #testResults = [];
  #testRun = 0;

  // The interactive session: stores, timeline, chart series, latest decision.
  #session = null;
  #latest = null; // { call, decision, pending, preview }
  #busy = false;
  #previewTimer = 0;
  #scanPolicy = null;
  #readyResolve;

  /** Resolves once the WASM is loaded and the first evaluation is rendered. */
  ready = new Promise((resolve) => {
    this.#readyResolve = resolve;
  });

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    adoptStyles(this.shadowRoot);
    this.#resetSession();
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
    return this.#view ? this.#view.state.doc.toString() : '';
  }

  connectedCallback() {
    this.#connected = true;
    if (this.#initialized) return;
    this.#initialized = true;
    this.#build();
    this.#init();
  }

  disconnectedCallback() {
    this.#connected = false;
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
    const root = this.shadowRoot;

    // Toolbar: presets, share.
    ui.preset = h('select', { id: 'preset', testid: 'preset', onchange: () => this.#loadPreset(ui.preset.value) });
    for (const [name, preset] of Object.entries(PRESETS)) ui.preset.append(h('option', { value: name, text: `${name} — ${preset.label}` }));
    ui.shareButton = h('button', { type: 'button', testid: 'share', onclick: () => this.#share() }, 'Share');
    ui.shareLink = h('input', { type: 'url', testid: 'share-link', class: 'share-link', readOnly: true, 'aria-label': 'Share link', hidden: true });
    ui.resetButton = h('button', { type: 'button', title: 'Forget the counters, approvals and timeline of this session', onclick: () => this.#resetSessionAndRender() }, 'Reset counters');
    ui.toolbar = h('div', { class: 'toolbar' },
      h('label', { for: 'preset' }, 'Preset', ui.preset),
      ui.resetButton,
      h('span', { class: 'spacer' }),
      ui.shareButton,
      ui.shareLink);
    ui.notices = h('div', { class: 'notices', role: 'status', 'aria-live': 'polite' });

    // Editor.
    ui.status = h('span', { class: 'status', 'data-state': 'checking', text: 'loading…' });
    ui.editor = h('div', { class: 'editor', testid: 'editor' });
    ui.diagnostics = h('ul', { class: 'diagnostics', testid: 'diagnostics', 'aria-label': 'Problems in the policy' });
    ui.editorPanel = h('section', { class: 'panel editor-panel', 'aria-label': 'Policy editor' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Policy' }), ui.status),
      ui.editor,
      ui.diagnostics);

    // Composer.
    ui.tool = h('input', { id: 'tool', testid: 'tool', list: 'tool-names', autocomplete: 'off', spellcheck: 'false', placeholder: 'run' });
    ui.toolNames = h('datalist', { id: 'tool-names' });
    ui.arguments = h('textarea', { id: 'arguments', testid: 'arguments', rows: 3, spellcheck: 'false', value: '{}' });
    ui.grant = h('input', { id: 'grant', testid: 'grant', autocomplete: 'off', spellcheck: 'false', placeholder: 'anonymous' });
    ui.grantAttributes = h('textarea', { id: 'grant-attributes', testid: 'grant-attributes', rows: 1, spellcheck: 'false', value: '{}' });
    // An access token pasted here is decoded in the page (never verified, never
    // sent anywhere) and fills the grant as the proxy would (worker/claims.js).
    ui.jwt = h('textarea', { id: 'jwt', testid: 'jwt', rows: 1, spellcheck: 'false', autocomplete: 'off', placeholder: 'eyJhbGciOi… (optional)' });
    ui.jwtNote = h('div', { class: 'hint', testid: 'jwt-note', role: 'status', text: 'Decoded in this page only; never sent anywhere.' });
    ui.jwt.addEventListener('input', () => this.#fillGrantFromJwt());
    ui.clock = h('input', { id: 'clock', testid: 'clock', autocomplete: 'off', spellcheck: 'false', value: DEFAULT_CLOCK });
    const step = (ms, label) => h('button', { type: 'button', class: 'small', 'aria-label': `Advance the clock by ${label}`, onclick: () => this.#advanceClock(ms) }, `+${label}`);
    ui.send = h('button', { type: 'button', class: 'primary', testid: 'send', onclick: () => this.#sendOnce() }, 'Send');
    ui.repeatCount = h('input', { id: 'repeat-count', testid: 'repeat-count', type: 'number', min: 1, max: MAX_REPEAT, step: 1, value: '12' });
    ui.repeatSpan = h('input', { id: 'repeat-span', testid: 'repeat-span', type: 'number', min: 0, step: 'any', value: '60' });
    ui.sendMany = h('button', { type: 'button', testid: 'send-many', onclick: () => this.#sendMany() }, 'Send N times');
    ui.composerError = h('div', { class: 'error-text', role: 'alert', testid: 'composer-error' });
    // Monitor mode as the proxy runs it: decided and counted the same, shown as not enforced.
    ui.monitor = h('input', { id: 'monitor', testid: 'monitor', type: 'checkbox', onchange: () => this.#renderSession() });
    for (const input of [ui.tool, ui.arguments, ui.grant, ui.grantAttributes, ui.clock]) {
      input.addEventListener('input', () => this.#schedulePreview());
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && (event.ctrlKey || event.metaKey || input.tagName === 'INPUT')) {
          event.preventDefault();
          this.#sendOnce();
        }
      });
    }
    ui.composer = h('section', { class: 'panel composer', 'aria-label': 'Call composer' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Call' }), h('span', { class: 'spacer' }), h('span', { class: 'hint', text: 'Enter / Ctrl+Enter sends' })),
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'tool', text: 'Tool' }), ui.tool, ui.toolNames),
        h('div', { class: 'field' }, h('label', { for: 'grant', text: 'Grant id' }), ui.grant)),
      h('div', { class: 'field' }, h('label', { for: 'arguments', text: 'Arguments (JSON object)' }), ui.arguments),
      h('div', { class: 'field' }, h('label', { for: 'grant-attributes', text: 'Grant attributes (JSON object, read as grant.<name>)' }), ui.grantAttributes),
      h('div', { class: 'field' }, h('label', { for: 'jwt', text: 'Or paste an OAuth access token (JWT): sub becomes the grant id, its claims the attributes' }), ui.jwt, ui.jwtNote),
      h('div', { class: 'field' },
        h('label', { for: 'clock', text: 'Simulated clock (RFC 3339)' }),
        h('div', { class: 'clock-row' }, ui.clock, step(1000, '1s'), step(60_000, '1m'), step(3_600_000, '1h'))),
      h('div', { class: 'row' },
        ui.send,
        h('div', { class: 'field' }, h('label', { for: 'repeat-count', text: 'Count' }), ui.repeatCount),
        h('div', { class: 'field' }, h('label', { for: 'repeat-span', text: 'Over (seconds)' }), ui.repeatSpan),
        ui.sendMany),
      h('label', { for: 'monitor', class: 'monitor-toggle' }, ui.monitor, 'Monitor mode: decide and audit, never refuse (the call would be forwarded)'),
      ui.composerError);

    // Decision.
    ui.decision = h('div', { class: 'decision', testid: 'decision', 'aria-live': 'polite' }, h('span', { class: 'empty', text: 'No decision yet.' }));
    ui.decisionPanel = h('section', { class: 'panel decision-panel', 'aria-label': 'Decision' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Decision' })),
      h('div', { class: 'stale-note', text: 'The policy has errors: showing results of the last valid policy.' }),
      ui.decision);

    // Counters, chart, timeline.
    ui.counters = h('div', { class: 'counters', testid: 'counters' });
    ui.chart = svg('svg', { class: 'chart', 'data-testid': 'chart', viewBox: '0 0 600 170', role: 'img', 'aria-label': 'Counter usage over simulated time' });
    ui.legend = h('div', { class: 'legend' });
    ui.timeline = h('ol', { class: 'timeline', testid: 'timeline', 'aria-label': 'Calls sent in this session' });
    ui.countersPanel = h('section', { class: 'panel', 'aria-label': 'Counters' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Counters of the last call' })),
      ui.counters,
      h('h3', { text: 'Usage over time' }),
      ui.chart,
      ui.legend);
    ui.timelinePanel = h('section', { class: 'panel', 'aria-label': 'Timeline' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Timeline' })),
      ui.timeline);

    // Policy tests.
    ui.testsSummary = h('span', { class: 'summary' });
    ui.tests = h('tbody', { testid: 'tests' });
    ui.addTest = h('button', { type: 'button', testid: 'add-test', onclick: () => this.#addCurrentAsTest() }, 'Add current call as test');
    ui.exportTests = h('button', { type: 'button', testid: 'export-tests', onclick: () => this.#exportTests() }, 'Export JSON Lines');
    ui.exportText = h('textarea', { id: 'export-text', testid: 'export-text', readOnly: true, rows: 4, spellcheck: 'false', placeholder: 'Export fills this with JSON Lines for npx toolgate eval' });
    ui.testsPanel = h('section', { class: 'panel tests-panel', 'aria-label': 'Policy tests' },
      h('div', { class: 'panel-head' },
        h('h2', { text: 'Policy tests' }), ui.testsSummary, h('span', { class: 'spacer' }), ui.addTest, ui.exportTests),
      h('div', { class: 'stale-note', text: 'The policy has errors: showing results of the last valid policy.' }),
      h('p', { class: 'hint', text: 'Run in order against fresh counters and approvals on every edit, like npx toolgate eval.' }),
      h('div', { class: 'table-wrap' },
        h('table', { class: 'tests-table' },
          h('thead', {}, h('tr', {}, ['', '#', 'Call', 'Grant', 'Time', 'Expected', 'Got', ''].map((t) => h('th', { scope: 'col', text: t })))),
          ui.tests)),
      h('div', { class: 'field' }, h('label', { for: 'export-text', text: 'Exported tests (npx toolgate eval --policy policy.json < tests.jsonl)' }), ui.exportText));

    // Scan.
    ui.scanInput = h('textarea', { id: 'scan-input', testid: 'scan-input', rows: 5, spellcheck: 'false', placeholder: '{"tools": [{"name": "run", "description": "…", "inputSchema": {…}}]}' });
    ui.scanRun = h('button', { type: 'button', testid: 'scan-run', onclick: () => this.#runScan() }, 'Scan');
    ui.scanApply = h('button', { type: 'button', testid: 'scan-apply', disabled: true, onclick: () => this.#applyScan() }, 'Use as policy');
    ui.scanError = h('div', { class: 'error-text', role: 'alert', testid: 'scan-error' });
    ui.scanSummary = h('p', { class: 'hint' });
    ui.scanResults = h('tbody', { testid: 'scan-results' });
    ui.scanPanel = h('section', { class: 'panel scan-panel', 'aria-label': 'Scan a server' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Scan a server’s tools' })),
      h('div', { class: 'field' }, h('label', { for: 'scan-input', text: 'Paste the result of tools/list (JSON)' }), ui.scanInput),
      h('div', { class: 'row' }, ui.scanRun, ui.scanApply),
      ui.scanError,
      ui.scanSummary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'scan-table' },
          h('thead', {}, h('tr', {}, ['Tool', 'Category', 'Risk', 'Signals'].map((t) => h('th', { scope: 'col', text: t })))),
          ui.scanResults)));

    // Replay.
    ui.replayInput = h('textarea', { id: 'replay-input', testid: 'replay-input', rows: 5, spellcheck: 'false',
      placeholder: 'Paste audit lines (toolgate serve --audit-arguments) or calls in eval format, one per line' });
    ui.replayRun = h('button', { type: 'button', testid: 'replay-run', onclick: () => this.#runReplay() }, 'Replay through this policy');
    ui.replayError = h('div', { class: 'error-text', role: 'alert', testid: 'replay-error' });
    ui.replaySummary = h('div', { class: 'replay-summary', testid: 'replay-summary' });
    ui.replayResults = h('tbody', { testid: 'replay-results' });
    ui.replayPanel = h('section', { class: 'panel replay-panel', 'aria-label': 'Replay recorded calls' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Replay recorded calls' })),
      h('p', { class: 'hint', text: 'Each call is decided again in recorded time with its grant, and compared with the decision the audit recorded (like npx toolgate replay --policy policy.json audit.jsonl). Nothing leaves the page.' }),
      h('div', { class: 'field' }, h('label', { for: 'replay-input', text: 'Recorded calls (JSON Lines)' }), ui.replayInput),
      h('div', { class: 'row' }, ui.replayRun),
      ui.replayError,
      ui.replaySummary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'replay-table' },
          h('thead', {}, h('tr', {}, ['Line', 'Tool', 'Grant', 'Time', 'Change', 'Recorded', 'Now'].map((t) => h('th', { scope: 'col', text: t })))),
          ui.replayResults)));
    // Pins: two tools/list captures compared as toolgate --pins would see them.
    ui.pinsBefore = h('textarea', { id: 'pins-before', testid: 'pins-before', rows: 5, spellcheck: 'false', placeholder: 'The capture you reviewed and pinned: {"tools": [...]}' });
    ui.pinsAfter = h('textarea', { id: 'pins-after', testid: 'pins-after', rows: 5, spellcheck: 'false', placeholder: 'What the server lists now: {"tools": [...]}' });
    ui.pinsRun = h('button', { type: 'button', testid: 'pins-run', onclick: () => this.#runPinsDiff() }, 'Compare');
    ui.pinsError = h('div', { class: 'error-text', role: 'alert', testid: 'pins-error' });
    ui.pinsSummary = h('p', { class: 'hint', testid: 'pins-summary' });
    ui.pinsResults = h('tbody', { testid: 'pins-results' });
    ui.pinsPanel = h('section', { class: 'panel scan-panel', 'aria-label': 'Compare two tools/list captures' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Pins: compare two tools/list captures' })),
      h('p', { class: 'hint', text: 'With toolgate serve/stdio --pins made from the first capture (toolgate pin), a tool that changed or is not pinned leaves tools/list and its calls are denied (tool_changed).' }),
      h('div', { class: 'field' }, h('label', { for: 'pins-before', text: 'Pinned capture (tools/list JSON)' }), ui.pinsBefore),
      h('div', { class: 'field' }, h('label', { for: 'pins-after', text: 'Current capture (tools/list JSON)' }), ui.pinsAfter),
      h('div', { class: 'row' }, ui.pinsRun),
      ui.pinsError,
      ui.pinsSummary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'scan-table' },
          h('thead', {}, h('tr', {}, ['Tool', 'Status', 'With pins', 'What changed'].map((t) => h('th', { scope: 'col', text: t })))),
          ui.pinsResults)));

    ui.side = h('div', { class: 'side' });
    ui.grid = h('div', { class: 'grid' }, ui.editorPanel, ui.side);
    ui.main = h('div', { class: 'tg' });
    root.append(ui.main);
    this.#arrange();

    this.#view = new EditorView({
      root,
      parent: ui.editor,
      state: this.#editorState(''),
    });
  }

  // Places the sections for full or compact mode.
  #arrange() {
    const ui = this.#ui;
    const compact = this.compact;
    ui.main.classList.toggle('compact', compact);
    ui.main.replaceChildren(...(compact ? [ui.notices, ui.grid] : [ui.toolbar, ui.notices, ui.grid, ui.testsPanel, ui.replayPanel, ui.scanPanel, ui.pinsPanel]));
    ui.side.replaceChildren(...(compact ? [ui.composer, ui.decisionPanel] : [ui.composer, ui.decisionPanel, ui.countersPanel, ui.timelinePanel]));
  }

  #editorState(text) {
    return EditorState.create({
      doc: text,
      extensions: [
        basicSetup,
        json(),
        jsonLanguage.data.of({ autocomplete: guardedCompletion() }),
        hoverTooltip(guardedHover()),
        stateExtensions(policySchema),
        lintGutter(),
        ruleHighlightField,
        EditorView.lineWrapping,
        EditorView.updateListener.of((update) => {
          if (update.docChanged) this.#scheduleCheck();
        }),
        EditorView.contentAttributes.of({ 'aria-label': 'Policy JSON' }),
      ],
    });
  }

  // ------------------------------------------------------------ loading

  async #init() {
    try {
      this.#toolgate = await sharedToolgate();
    } catch (error) {
      this.#notice(`The WebAssembly core failed to load: ${error?.message ?? error}`);
      this.#ui.status.dataset.state = 'error';
      this.#ui.status.textContent = 'engine failed to load';
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

  #ownHash = '';

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
    this.#tests = tests.map((line) => (line && typeof line === 'object' ? structuredClone(line) : line));
    const first = this.#tests.find((line) => line && typeof line === 'object' && typeof line.tool === 'string');
    this.#fillComposer(first ? {
      tool: first.tool,
      arguments: JSON.stringify(first.arguments ?? {}),
      grant: grantId(first.grant),
      grantAttributes: JSON.stringify(first.grant && typeof first.grant === 'object' ? Object.fromEntries(Object.entries(first.grant).filter(([k]) => k !== 'id')) : {}),
      clock: DEFAULT_CLOCK,
    } : { tool: '', arguments: '{}', grant: 'alice', grantAttributes: '{}', clock: DEFAULT_CLOCK });
    this.#resetSession();
    this.#latest = null;
    this.#renderTimeline();
    this.#renderChart();
    this.#setEditorText(text);
    await this.#check({ force: true });
  }

  async #applyState(state) {
    const composer = state.composer ?? {};
    this.#ui.preset.value = typeof state.preset === 'string' && state.preset in PRESETS ? state.preset : '';
    if (!(state.preset in PRESETS)) this.#ui.preset.selectedIndex = -1;
    this.#tests = Array.isArray(state.tests) ? state.tests : [];
    this.#fillComposer({
      tool: String(composer.tool ?? ''),
      arguments: String(composer.arguments ?? '{}'),
      grant: String(composer.grant ?? ''),
      grantAttributes: String(composer.grantAttributes ?? '{}'),
      clock: String(composer.clock ?? DEFAULT_CLOCK),
      repeatCount: composer.repeatCount,
      repeatSpan: composer.repeatSpan,
    });
    this.#resetSession();
    this.#latest = null;
    this.#renderTimeline();
    this.#renderChart();
    this.#setEditorText(state.policy);
    await this.#check({ force: true });
  }

  #fillComposer(fields) {
    const ui = this.#ui;
    ui.tool.value = fields.tool;
    ui.arguments.value = fields.arguments;
    ui.grant.value = fields.grant;
    ui.grantAttributes.value = fields.grantAttributes;
    ui.clock.value = fields.clock;
    if (fields.repeatCount !== undefined) ui.repeatCount.value = String(fields.repeatCount);
    if (fields.repeatSpan !== undefined) ui.repeatSpan.value = String(fields.repeatSpan);
    ui.composerError.textContent = '';
  }

  #setEditorText(text) {
    const view = this.#view;
    clearTimeout(this.#debounce);
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: String(text) },
      effects: setRuleHighlight.of(null),
      selection: { anchor: 0 },
    });
    this.#scrollEditorTo(0, 'start');
  }

  // Scrolls the editor's own scroller, never the page, so that `pos` shows.
  // CodeMirror's scrollIntoView also scrolls every scrollable ancestor and the
  // window: on a page that embeds the component, loading a policy or deciding
  // a call would move the reader's page. (Clicking a diagnostic or "Show in
  // policy" still uses it: the reader asked to be taken there.)
  #scrollEditorTo(pos, where) {
    const view = this.#view;
    view.requestMeasure({
      key: 'toolgate-scroll-editor',
      read: () => {
        const block = view.lineBlockAt(Math.min(pos, view.state.doc.length));
        const scroller = view.scrollDOM;
        const top = where === 'start' ? block.top : block.top + block.height / 2 - scroller.clientHeight / 2;
        return Math.max(0, Math.min(top, scroller.scrollHeight - scroller.clientHeight));
      },
      write: (top) => {
        view.scrollDOM.scrollTop = top;
      },
    });
  }

  // ------------------------------------------------------------ checking

  #scheduleCheck() {
    clearTimeout(this.#debounce);
    const length = this.#view.state.doc.length;
    const delay = length > LARGE_DOC ? 500 : length > 100_000 ? 150 : 30;
    if (length > 100_000) this.#setStatus('checking', 'checking…');
    this.#debounce = setTimeout(() => this.#check(), delay);
  }

  // Compiles the editor's text once, shows its diagnostics, and re-runs the
  // tests (and the preview) against it; an invalid text keeps the last results, marked stale.
  async #check({ force = false } = {}) {
    clearTimeout(this.#debounce);
    const tg = this.#toolgate;
    if (!tg) return;
    const view = this.#view;
    const text = view.state.doc.toString();
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
    if (view.state.doc.toString() !== text) return; // edited meanwhile: the next check follows
    this.#showDiagnostics(diagnostics);

    if (policy) {
      const previous = this.#policy;
      this.#policy = policy;
      this.#policyText = text;
      this.#stale = false;
      if (previous && previous !== policy) previous.dispose();
      this.#updateToolNames(policy);
      const errors = diagnostics.filter((d) => d.severity === 'error').length;
      const warnings = diagnostics.length - errors;
      this.#setStatus('ok', warnings ? `valid · ${warnings} warning${warnings > 1 ? 's' : ''}` : 'valid');
    } else {
      this.#stale = true;
      const errors = diagnostics.filter((d) => d.severity === 'error').length;
      this.#setStatus('error', `${errors || diagnostics.length} error${(errors || diagnostics.length) > 1 ? 's' : ''}`);
    }
    this.#markStale();
    if (!policy) return;
    this.#relocateRule(false);
    await this.#runTests();
    if (!this.#latest || this.#latest.preview) await this.#preview();
    this.lastEvaluationMs = performance.now() - started;
  }

  #setStatus(state, text) {
    this.#ui.status.dataset.state = state;
    this.#ui.status.textContent = text;
  }

  #markStale() {
    const stale = String(this.#stale);
    this.#ui.decisionPanel.dataset.stale = stale;
    this.#ui.testsPanel.dataset.stale = stale;
    this.#ui.decision.dataset.stale = stale;
  }

  #showDiagnostics(diagnostics) {
    const view = this.#view;
    const doc = view.state.doc;
    const cmDiagnostics = [];
    const items = [];
    for (const [index, d] of diagnostics.entries()) {
      const from = offsetOf(doc, d.line, d.column);
      const to = d.line > 0 ? tokenEnd(doc, from) : from;
      const pointer = d.pointer ? ` (${d.pointer})` : '';
      cmDiagnostics.push({
        from,
        to,
        severity: d.severity === 'warning' ? 'warning' : 'error',
        message: `${d.message}${pointer}`,
        source: d.code,
      });
      if (index < MAX_DIAGNOSTICS_RENDERED) {
        items.push(h('li', {
          testid: 'diagnostic',
          'data-line': d.line,
          'data-column': d.column,
          'data-severity': d.severity,
          'data-pointer': d.pointer ?? '',
          'data-code': d.code,
        }, h('button', {
          type: 'button',
          title: 'Show in the editor',
          onclick: () => {
            const at = Math.min(offsetOf(view.state.doc, d.line, d.column), view.state.doc.length);
            view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
            view.focus();
          },
        }, `${d.line}:${d.column} ${d.severity} ${d.message}${pointer}`)));
      }
    }
    if (diagnostics.length > MAX_DIAGNOSTICS_RENDERED) {
      items.push(h('li', { class: 'hint', text: `… and ${diagnostics.length - MAX_DIAGNOSTICS_RENDERED} more` }));
    }
    this.#ui.diagnostics.replaceChildren(...items);
    view.dispatch(setDiagnostics(view.state, cmDiagnostics));
  }

  // Tool names for the composer's datalist: every "tools" key and "hide"
  // entry, as the compiled plan lists them (policy.names), names before globs.
  #updateToolNames(policy) {
    const names = [...policy.names.exact, ...policy.names.globs].slice(0, 500);
    this.#ui.toolNames.replaceChildren(...names.map((name) => h('option', { value: name })));
  }

  // ------------------------------------------------------------ tests

  async #runTests() {
    const policy = this.#policy;
    if (!policy) return;
    const run = ++this.#testRun;
    const counters = new MemoryCounterStore();
    const approvals = new MemoryApprovalStore();
    const results = [];
    for (const line of this.#tests) {
      if (line && typeof line === 'object' && !Array.isArray(line) && 'approve' in line) {
        const at = this.#timeOf(line.now, DEFAULT_NOW);
        await approvals.approve(String(line.approve), at);
        results.push({ approved: true });
        continue;
      }
      const call = line && typeof line === 'object' && !Array.isArray(line) ? { ...line } : line;
      let expect;
      if (call && typeof call === 'object' && !Array.isArray(call)) {
        expect = call.expect;
        delete call.expect;
      }
      let decision;
      try {
        decision = await policy.decide(call, { counters, approvals, now: DEFAULT_NOW });
      } catch (error) {
        decision = { decision: 'deny', code: 'invalid_call', rule: '', message: String(error?.message ?? error) };
      }
      results.push({ decision, expect, pass: expect === undefined ? null : meets(expect, decision) });
      if (run !== this.#testRun) return;
    }
    if (run !== this.#testRun) return;
    this.#testResults = results;
    this.#renderTests();
  }

  #timeOf(value, fallback) {
    if (value === undefined || value === null || value === '') return fallback;
    const ms = this.#toolgate.parseTime(value);
    return Number.isFinite(ms) ? ms : fallback;
  }

  #renderTests() {
    const rows = [];
    let passed = 0;
    let failed = 0;
    this.#tests.forEach((line, index) => {
      const result = this.#testResults[index];
      const remove = h('button', { type: 'button', class: 'small', 'aria-label': `Delete test ${index + 1}`, onclick: () => this.#deleteTest(index) }, 'Delete');
      if (line && typeof line === 'object' && 'approve' in line) {
        rows.push(h('tr', { testid: 'test-approve', class: 'approve-row' },
          h('td', { class: 'mark', text: '✓' }),
          h('td', { text: String(index + 1) }),
          h('td', { class: 'call', colspan: 2, title: String(line.approve) }, `approve ${compactJson(line.approve, 24)}`),
          h('td', { text: line.now === undefined ? '' : shortTime(this.#timeOf(line.now, DEFAULT_NOW)) }),
          h('td', { text: '—' }),
          h('td', { text: 'approved' }),
          h('td', {}, remove)));
        return;
      }
      const isCall = line && typeof line === 'object' && !Array.isArray(line);
      const decision = result?.decision;
      const pass = result ? (result.pass === null ? 'true' : String(result.pass)) : 'false';
      if (result?.pass === false) failed += 1;
      else if (result) passed += 1;
      rows.push(h('tr', { testid: 'test-row', 'data-pass': pass, 'data-decision': decision?.decision ?? '', 'data-code': decision?.code ?? '' },
        h('td', { class: 'mark', 'aria-label': pass === 'true' ? 'pass' : 'fail', text: pass === 'true' ? '✓' : '✗' }),
        h('td', { text: String(index + 1) }),
        h('td', { class: 'call', title: compactJson(isCall ? line.arguments ?? {} : line, 2000) },
          h('code', { text: isCall ? String(line.tool ?? '') : compactJson(line, 60) }), ' ',
          isCall ? compactJson(line.arguments ?? {}, 80) : ''),
        h('td', { text: isCall ? grantId(line.grant) : '' }),
        h('td', { text: isCall && line.now !== undefined ? shortTime(this.#timeOf(line.now, DEFAULT_NOW)) : '' }),
        h('td', { text: expectText(result ? result.expect : line?.expect) }),
        h('td', {}, decision ? h('span', { class: 'dec', 'data-decision': decision.decision, text: `${decision.decision} · ${decision.code}` }) : ''),
        h('td', {}, remove)));
    });
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 8, class: 'empty', text: 'No tests yet: send a call, then “Add current call as test”.' })));
    this.#ui.tests.replaceChildren(...rows);
    this.#ui.testsSummary.dataset.failed = String(failed);
    this.#ui.testsSummary.textContent = `${passed} passed · ${failed} failed`;
  }

  #monitoredByPolicy(call) {
    try {
      return typeof call?.tool === 'string' && this.#policy?.isMonitored(call.tool) === true;
    } catch {
      return false;
    }
  }

  // ------------------------------------------------------------ replay

  async #runReplay() {
    const ui = this.#ui;
    const policy = this.#policy;
    ui.replayError.textContent = '';
    if (!policy) {
      ui.replayError.textContent = 'The policy has errors: fix it first.';
      return;
    }
    let result;
    try {
      const { calls, skipped } = readRecords(ui.replayInput.value.split('\n'), { parseTime: (value) => this.#toolgate.parseTime(value) });
      result = await replay({ policy, calls, skipped });
    } catch (error) {
      ui.replaySummary.replaceChildren();
      ui.replayResults.replaceChildren();
      ui.replayError.textContent = error instanceof ReplayInputError ? error.message : String(error?.message ?? error);
      return;
    }
    const list = (counts) => Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key} ${n}`).join(', ') || '—';
    ui.replaySummary.dataset.changed = String(result.changed.length);
    ui.replaySummary.replaceChildren(
      h('p', { testid: 'replay-counts', text: `${result.replayed} calls replayed${result.skipped ? ` (${result.skipped} without a tool skipped)` : ''}; ${result.changed.length} changed.` }),
      h('p', { testid: 'replay-by-change', text: `By change: ${list(result.byChange)}` }),
      h('p', { testid: 'replay-by-rule', text: `By rule: ${list(result.byRule)}` }),
      h('p', { testid: 'replay-by-tool', text: `By tool: ${list(result.byTool)}` }));
    const rows = result.changed.slice(0, MAX_TIMELINE_RENDERED).map((change) => h('tr', { testid: 'replay-change', dataset: { change: change.change, tool: change.call.tool } },
      h('td', { text: String(change.line) }),
      h('td', {}, h('code', { text: change.call.tool })),
      h('td', { text: grantId(change.call.grant) }),
      h('td', { text: shortTime(change.call.now) }),
      h('td', { text: change.change }),
      h('td', { text: `${change.baseline.code} ${change.baseline.rule}` }),
      h('td', { text: `${change.policy.code} ${change.policy.rule}` })));
    if (result.changed.length > rows.length) rows.push(h('tr', {}, h('td', { colspan: 7, class: 'hint', text: `${result.changed.length - rows.length} more not shown` })));
    ui.replayResults.replaceChildren(...rows);
  }

  #deleteTest(index) {
    this.#tests.splice(index, 1);
    this.#testResults.splice(index, 1);
    this.#renderTests();
    this.#runTests();
  }

  #addCurrentAsTest() {
    const latest = this.#latest;
    if (!latest || !latest.call) {
      this.#notice('Send a call first: the test expects the decision it got.');
      return;
    }
    const { call, decision } = latest;
    this.#tests.push({ ...call, expect: { decision: decision.decision, code: decision.code } });
    this.#runTests();
  }

  #exportLines() {
    return this.#tests.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + (this.#tests.length ? '\n' : '');
  }

  #exportTests() {
    const text = this.#exportLines();
    this.#ui.exportText.value = text;
    const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
    const link = h('a', { href: url, download: 'toolgate-tests.jsonl', hidden: true });
    this.shadowRoot.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  // ------------------------------------------------------------ composer and session

  #resetSession() {
    this.#session = {
      counters: new MemoryCounterStore(),
      approvals: new MemoryApprovalStore(),
      timeline: [],
      series: new Map(), // counter key -> { label, max, points: [{ t, used }] }
      lastCounters: [],
    };
  }

  async #resetSessionAndRender() {
    this.#resetSession();
    this.#latest = null;
    this.#renderSession();
    await this.#preview();
  }

  // The composer's call at `nowMs`, or throws an Error with a readable reason.
  #composeCall(nowMs) {
    const ui = this.#ui;
    const tool = ui.tool.value;
    let args;
    try {
      args = JSON.parse(ui.arguments.value.trim() || '{}');
    } catch (error) {
      throw new Error(`Arguments are not valid JSON: ${error.message}`);
    }
    let attributes;
    try {
      attributes = JSON.parse(ui.grantAttributes.value.trim() || '{}');
    } catch (error) {
      throw new Error(`Grant attributes are not valid JSON: ${error.message}`);
    }
    if (!attributes || typeof attributes !== 'object' || Array.isArray(attributes)) throw new Error('Grant attributes must be a JSON object.');
    const id = ui.grant.value.trim() || 'anonymous';
    const grant = Object.keys(attributes).length ? { ...attributes, id } : id;
    return { tool, arguments: args, grant, now: iso(nowMs) };
  }

  #clockMs() {
    const value = this.#ui.clock.value.trim();
    const ms = this.#toolgate.parseTime(value);
    if (!Number.isFinite(ms)) throw new Error(`The clock "${value}" is not an RFC 3339 time such as ${DEFAULT_CLOCK}.`);
    return ms;
  }

  #advanceClock(ms) {
    let now;
    try {
      now = this.#clockMs();
    } catch (error) {
      this.#ui.composerError.textContent = error.message;
      return;
    }
    this.#ui.clock.value = iso(now + ms);
    this.#ui.composerError.textContent = '';
    this.#schedulePreview();
  }

  #fillGrantFromJwt() {
    const ui = this.#ui;
    const text = ui.jwt.value.trim();
    if (text === '') {
      ui.jwtNote.textContent = 'Decoded in this page only; never sent anywhere.';
      return;
    }
    const claims = decodeJwtClaims(text);
    const grant = claims instanceof Error ? null : grantFromClaims(claims);
    if (!grant) {
      ui.jwtNote.textContent = claims instanceof Error ? `Not a JWT: ${claims.message}.` : 'This token has no "sub" claim to name the grant.';
      return;
    }
    ui.grant.value = grant.id;
    ui.grantAttributes.value = JSON.stringify(grant.attributes);
    ui.jwtNote.textContent = `Grant "${grant.id}" with ${Object.keys(grant.attributes).length} attributes (scope: ${grant.attributes.scope.join(' ') || 'none'}). Decoded in this page only, not verified, never sent.`;
    this.#schedulePreview();
  }

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
      call = this.#composeCall(this.#clockMs());
    } catch (error) {
      this.#ui.composerError.textContent = error.message;
      return;
    }
    this.#ui.composerError.textContent = '';
    const { decision, pending } = await this.#dryRun(policy, call);
    if (this.#latest && !this.#latest.preview) return;
    this.#latest = { call, decision, pending, preview: true };
    const counters = pending ? await this.#counterRows(pending) : [];
    this.#renderDecision();
    this.#renderCounters(counters);
  }

  async #dryRun(policy, call) {
    const first = policy.evaluate(call, { now: DEFAULT_NOW });
    if (!first.pending) return { decision: first, pending: null };
    this.#limitsOf.set(first, policy.limits);
    const approvals = this.#session.approvals;
    const approved = first.approval ? await approvals.isApproved(first.approval.id, first.approval.timeout_ms, first.now) : true;
    const states = approved ? await this.#session.counters.peek(first.counters) : [];
    return { decision: this.#toolgate.finish(first, approved, states), pending: first };
  }

  async #sendOnce() {
    if (this.#busy) return;
    let now;
    try {
      now = this.#clockMs();
      this.#composeCall(now);
    } catch (error) {
      this.#ui.composerError.textContent = error.message;
      return;
    }
    this.#busy = true;
    try {
      await this.#send([now]);
    } finally {
      this.#busy = false;
    }
  }

  async #sendMany() {
    if (this.#busy) return;
    const ui = this.#ui;
    let now;
    try {
      now = this.#clockMs();
      this.#composeCall(now);
    } catch (error) {
      ui.composerError.textContent = error.message;
      return;
    }
    const count = Math.floor(Number(ui.repeatCount.value));
    const span = Number(ui.repeatSpan.value);
    if (!Number.isFinite(count) || count < 1 || count > MAX_REPEAT) {
      ui.composerError.textContent = `Count must be a whole number from 1 to ${MAX_REPEAT}.`;
      return;
    }
    if (!Number.isFinite(span) || span < 0) {
      ui.composerError.textContent = 'The span must be a number of seconds, 0 or more.';
      return;
    }
    const times = Array.from({ length: count }, (_, i) => now + Math.floor((i * span * 1000) / count));
    this.#busy = true;
    try {
      await this.#send(times);
      ui.clock.value = iso(times[times.length - 1]);
    } finally {
      this.#busy = false;
    }
  }

  // Sends the composer's call at each time, in order, through the session's stores.
  async #send(times) {
    const policy = this.#policy;
    const ui = this.#ui;
    if (!policy) {
      ui.composerError.textContent = 'The policy has errors and no earlier version compiled: fix it first.';
      return;
    }
    ui.composerError.textContent = '';
    const session = this.#session;
    let last = null;
    for (const now of times) {
      const call = this.#composeCall(now);
      let pending = null;
      let decision;
      try {
        const first = policy.evaluate(call, { now: DEFAULT_NOW });
        pending = first.pending ? first : null;
        if (pending) this.#limitsOf.set(pending, policy.limits);
        // explain(): the same decision and charge as decide(), with its steps.
        decision = await policy.explain(call, { counters: session.counters, approvals: session.approvals, now: DEFAULT_NOW });
      } catch (error) {
        decision = { decision: 'deny', code: 'invalid_call', rule: '', message: String(error?.message ?? error) };
      }
      session.timeline.push({ kind: 'call', call, decision, at: now, monitored: ui.monitor.checked || this.#monitoredByPolicy(call) });
      if (pending) {
        const states = await session.counters.peek(pending.counters);
        pending.counters.forEach((request, i) => {
          const limit = pending.limits.find((l) => l.counter === i);
          let series = session.series.get(request.key);
          if (!series) {
            series = { label: this.#counterLabel(pending, request, limit), max: request.max, points: [] };
            session.series.set(request.key, series);
          }
          series.max = request.max;
          series.points.push({ t: now, used: estimateCount(request, states[i], pending.now) });
        });
      }
      last = { call, decision, pending, preview: false };
      const { trace: _trace, ...detail } = decision;
      this.dispatchEvent(new CustomEvent('decision', { detail, bubbles: true, composed: true }));
    }
    this.#latest = last;
    this.#renderSession();
    this.#relocateRule(true);
  }

  async #approve() {
    const decision = this.#latest?.decision;
    if (!decision?.approval_id) return;
    let now;
    try {
      now = this.#clockMs();
    } catch (error) {
      this.#ui.composerError.textContent = error.message;
      return;
    }
    await this.#session.approvals.approve(decision.approval_id, now);
    this.#session.timeline.push({ kind: 'approve', id: decision.approval_id, at: now });
    this.#latest = { ...this.#latest, approved: true };
    this.#renderSession();
  }

  // A counter's label, from the plan's description of the limit that checks
  // it (policy.limits, by the pending evaluation's rule): its counter name (the
  // rule when unnamed) and what it is counted per. Counter keys are the
  // stores' business; nothing here reads them.
  #counterLabel(pending, request, limit) {
    const described = limit ? this.#limitsOf.get(pending)?.find((l) => l.rule === limit.rule) : undefined;
    const name = described?.counter ?? limit?.rule ?? request.key;
    const per = described?.key ? ` per ${described.key}` : '';
    const who = request.scope === 'grant' ? `grant ${request.grant}` : 'global';
    return `${name}${per} · ${who} · ${formatDuration(request.window_ms)} ${request.algorithm}`;
  }

  // Current usage of the counters a call needs: one row per limit.
  async #counterRows(pending) {
    const states = await this.#session.counters.peek(pending.counters);
    return pending.limits.map((limit) => {
      const request = pending.counters[limit.counter];
      const state = states[limit.counter] ?? { current: 0, previous: 0 };
      const used = estimateCount(request, state, pending.now);
      return {
        key: request.key,
        label: this.#counterLabel(pending, request, limit),
        rule: limit.rule,
        used: Math.round(used * 100) / 100,
        max: limit.max,
        cost: request.cost,
        reset: request.bucket_start_ms + request.window_ms,
        algorithm: request.algorithm,
      };
    });
  }

  // ------------------------------------------------------------ rendering

  async #renderSession() {
    this.#renderDecision();
    const latest = this.#latest;
    this.#renderCounters(latest?.pending ? await this.#counterRows(latest.pending) : []);
    this.#renderTimeline();
    this.#renderChart();
  }

  #renderDecision() {
    const el = this.#ui.decision;
    const latest = this.#latest;
    if (!latest) {
      delete el.dataset.decision;
      delete el.dataset.code;
      el.replaceChildren(h('span', { class: 'empty', text: 'No decision yet.' }));
      return;
    }
    const { decision, call, preview } = latest;
    // The checkbox, or the policy's own "mode": "monitor" (document or entry).
    const monitored = this.#ui.monitor.checked || this.#monitoredByPolicy(call);
    el.dataset.enforced = String(!monitored);
    el.dataset.decision = decision.decision;
    el.dataset.code = decision.code;
    el.dataset.preview = String(Boolean(preview));
    const parts = [
      h('div', { class: 'decision-head' },
        h('span', { class: 'badge', 'data-decision': decision.decision, text: decision.decision.replace('_', ' ') }),
        h('code', { testid: 'decision-code', text: decision.code }),
        preview ? h('span', { class: 'tag', text: 'preview · not sent' }) : h('span', { class: 'tag', text: `at ${iso(this.#timeOf(call.now, DEFAULT_NOW))}` }),
        monitored ? h('span', { class: 'tag', testid: 'monitor-tag', text: decision.decision === 'allow' ? 'monitor · not enforced' : `monitor · not enforced: would be ${decision.decision.replace('_', ' ')}, forwarded` }) : null),
      h('p', { class: 'decision-message', testid: 'decision-message', text: decision.message }),
      h('div', { class: 'kv' },
        h('span', { class: 'label', text: 'Rule' }),
        h('code', { testid: 'decision-rule', text: decision.rule }),
        decision.rule ? h('button', { type: 'button', class: 'small', onclick: () => this.#relocateRule(true, true) }, 'Show in policy') : null),
    ];
    if (decision.retry_after_ms !== undefined) {
      const at = this.#timeOf(call.now, DEFAULT_NOW) + decision.retry_after_ms;
      parts.push(h('div', { class: 'kv', testid: 'retry-after', 'data-ms': decision.retry_after_ms },
        h('span', { class: 'label', text: 'Retry' }),
        `after ${formatDuration(decision.retry_after_ms)} (${decision.retry_after_ms} ms, at ${iso(at)})`));
    }
    if (decision.decision === 'approval_required') {
      const approve = h('button', { type: 'button', class: 'primary', testid: 'approve', onclick: () => this.#approve() }, 'Approve');
      if (preview) approve.title = 'Approves this call for the session at the simulated clock';
      parts.push(h('div', { class: 'kv' },
        h('span', { class: 'label', text: 'Approval' }),
        h('code', { text: decision.approval_id ? `${decision.approval_id.slice(0, 16)}…` : '' }),
        approve));
      if (latest.approved) parts.push(h('p', { class: 'hint', text: 'Approved at the simulated clock: send the same call again from the same grant to use it (once).' }));
    }
    if (Array.isArray(decision.trace)) {
      parts.push(h('details', { testid: 'decision-trace', open: true },
        h('summary', { text: `Why: ${decision.trace.length} step${decision.trace.length === 1 ? '' : 's'}` }),
        h('ol', { class: 'trace' }, decision.trace.map((step) => h('li', { testid: 'trace-step', dataset: { step: step.step } },
          h('code', { text: step.rule }), ` ${traceText(step)}`)))));
    }
    parts.push(h('details', {}, h('summary', { text: 'Call' }), h('pre', { text: JSON.stringify(call, null, 2) })));
    el.replaceChildren(...parts);
  }

  #renderCounters(rows) {
    const el = this.#ui.counters;
    if (!rows.length) {
      el.replaceChildren(h('p', { class: 'empty', text: this.#latest ? 'No limits apply to this call.' : 'Send a call to see its counters.' }));
      return;
    }
    el.replaceChildren(...rows.map((row) => {
      const ratio = row.max > 0 ? Math.min(1, row.used / row.max) : 1;
      const fill = h('span', { class: row.used + row.cost > row.max ? 'full' : '' });
      fill.style.width = `${(ratio * 100).toFixed(1)}%`;
      return h('div', { class: 'counter', testid: 'counter', 'data-used': row.used, 'data-max': row.max, 'data-key': row.key, 'data-reset': iso(row.reset) },
        h('span', { class: 'mono', text: row.label }),
        h('strong', { text: `${row.used} / ${row.max}` }),
        h('div', { class: 'bar', role: 'presentation' }, fill),
        h('span', { class: 'sub', text: `${row.rule} · ${row.algorithm === 'sliding' ? 'bucket rolls' : 'resets'} at ${iso(row.reset)} · cost ${row.cost}` }));
    }));
  }

  #renderTimeline() {
    const entries = this.#session.timeline;
    const shown = entries.slice(-MAX_TIMELINE_RENDERED);
    const items = shown.map((entry) => {
      if (entry.kind === 'approve') {
        return h('li', { class: 'approval', testid: 'timeline-approval' },
          h('span', { class: 'mono', text: shortTime(entry.at) }),
          h('span', { class: 'dec', text: 'approved' }),
          h('span', { class: 'what mono', text: entry.id }));
      }
      const { call, decision } = entry;
      return h('li', { testid: 'timeline-entry', 'data-decision': decision.decision, 'data-code': decision.code, title: decision.message },
        h('span', { class: 'mono', text: shortTime(entry.at) }),
        h('span', { class: 'dec', 'data-decision': decision.decision, text: entry.monitored && decision.decision !== 'allow' ? `${decision.code} (not enforced)` : decision.code }),
        h('span', { class: 'what' }, h('code', { text: String(call.tool) }), ` ${grantId(call.grant)} ${compactJson(call.arguments, 80)}`));
    });
    if (entries.length > shown.length) items.unshift(h('li', { class: 'hint', text: `${entries.length - shown.length} earlier calls not shown` }));
    if (!items.length) items.push(h('li', { class: 'empty', text: 'No calls sent yet.' }));
    this.#ui.timeline.replaceChildren(...items);
    this.#ui.timeline.scrollTop = this.#ui.timeline.scrollHeight;
  }

  #renderChart() {
    const chart = this.#ui.chart;
    const series = [...this.#session.series.values()].slice(0, COLORS.length);
    const W = 600;
    const H = 170;
    const pad = { left: 36, right: 10, top: 10, bottom: 22 };
    const nodes = [];
    if (!series.length) {
      nodes.push(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'Counter usage appears here once calls hit a limit.'));
      chart.replaceChildren(...nodes);
      this.#ui.legend.replaceChildren();
      return;
    }
    const times = series.flatMap((s) => s.points.map((p) => p.t));
    let t0 = Math.min(...times);
    let t1 = Math.max(...times);
    if (t1 - t0 < 1000) {
      t0 -= 500;
      t1 += 500;
    }
    const yMax = Math.max(1, ...series.map((s) => s.max), ...series.flatMap((s) => s.points.map((p) => p.used))) * 1.08;
    const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (W - pad.left - pad.right);
    const y = (v) => H - pad.bottom - (v / yMax) * (H - pad.top - pad.bottom);
    nodes.push(svg('line', { x1: pad.left, y1: y(0), x2: W - pad.right, y2: y(0), stroke: '#c9ced6' }));
    nodes.push(svg('line', { x1: pad.left, y1: pad.top, x2: pad.left, y2: y(0), stroke: '#c9ced6' }));
    nodes.push(svg('text', { x: pad.left - 4, y: y(0) + 3, 'text-anchor': 'end' }, '0'));
    nodes.push(svg('text', { x: pad.left, y: H - 6, 'text-anchor': 'start' }, shortTime(t0)));
    nodes.push(svg('text', { x: W - pad.right, y: H - 6, 'text-anchor': 'end' }, shortTime(t1)));
    series.forEach((s, i) => {
      const color = COLORS[i];
      nodes.push(svg('line', { x1: pad.left, x2: W - pad.right, y1: y(s.max), y2: y(s.max), stroke: color, 'stroke-dasharray': '4 3', 'stroke-opacity': 0.7, 'data-max': s.max }));
      nodes.push(svg('text', { x: pad.left - 4, y: y(s.max) + 3, 'text-anchor': 'end', fill: color }, String(s.max)));
      const points = s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.used).toFixed(1)}`).join(' ');
      nodes.push(svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2, 'stroke-linejoin': 'round' }));
      for (const p of s.points.slice(-200)) nodes.push(svg('circle', { cx: x(p.t).toFixed(1), cy: y(p.used).toFixed(1), r: 2.5, fill: color }));
    });
    chart.replaceChildren(...nodes);
    this.#ui.legend.replaceChildren(...series.map((s, i) => {
      const item = h('span', { text: `${s.label} (max ${s.max})` });
      item.style.setProperty('--swatch', COLORS[i]);
      return item;
    }));
  }

  // Highlights the latest decision's rule in the editor (and scrolls to it when asked).
  #relocateRule(scroll, focus = false) {
    const view = this.#view;
    const rule = this.#latest?.decision?.rule;
    if (!view || !this.#toolgate) return;
    if (!rule) {
      view.dispatch({ effects: setRuleHighlight.of(null) });
      return;
    }
    const text = view.state.doc.toString();
    if (!scroll && text.length > LARGE_DOC) return;
    let at = null;
    try {
      at = this.#toolgate.locate(text, rule);
    } catch {
      at = null;
    }
    if (!at) return; // not JSON right now: keep the mapped highlight
    const from = Math.min(offsetOf(view.state.doc, at.line, at.column), view.state.doc.length);
    const to = tokenEnd(view.state.doc, from);
    const effects = [setRuleHighlight.of({ from, to })];
    if (focus) {
      // The reader clicked "Show in policy": take them there, page included.
      effects.push(EditorView.scrollIntoView(from, { y: 'center' }));
      view.dispatch({ effects, selection: { anchor: from, head: to } });
      view.focus();
      return;
    }
    view.dispatch({ effects });
    if (scroll) this.#scrollEditorTo(from, 'center');
  }

  // ------------------------------------------------------------ scan

  async #runScan() {
    const ui = this.#ui;
    ui.scanError.textContent = '';
    ui.scanSummary.textContent = '';
    ui.scanResults.replaceChildren();
    ui.scanApply.disabled = true;
    this.#scanPolicy = null;
    let input;
    try {
      input = JSON.parse(ui.scanInput.value);
    } catch (error) {
      ui.scanError.textContent = `The tools/list result is not valid JSON: ${error.message}`;
      return;
    }
    // A whole JSON-RPC response is fine too.
    if (input && typeof input === 'object' && !Array.isArray(input) && input.tools === undefined && input.result && typeof input.result === 'object') input = input.result;
    let scan;
    try {
      const { scanTools, ScanError, starterPolicy, toolsOf } = await import('../../lib/scan.js');
      try {
        scan = scanTools(input);
        // Signs of instructions to the model join the signals; flagged tools are hidden in the policy.
        const { flagPoisoned } = await import('../../lib/poisoning.js');
        flagPoisoned(scan.tools, toolsOf(input));
        scan.policy = starterPolicy(scan.tools, { hideFlagged: true });
      } catch (error) {
        ui.scanError.textContent = error instanceof ScanError ? error.message : `The scan failed: ${error?.message ?? error}`;
        return;
      }
    } catch (error) {
      ui.scanError.textContent = `The scanner could not be loaded: ${error?.message ?? error}`;
      return;
    }
    const tools = Array.isArray(scan?.tools) ? scan.tools : [];
    ui.scanResults.replaceChildren(...tools.map((tool) => h('tr', { testid: 'scan-row', 'data-name': tool.name, 'data-category': tool.category, 'data-risk': tool.risk },
      h('td', {}, h('code', { text: String(tool.name) })),
      h('td', { text: String(tool.category ?? '') }),
      h('td', {}, h('span', { class: 'risk', 'data-risk': tool.risk, text: String(tool.risk ?? '') })),
      h('td', {}, h('ul', { class: 'signals' }, (Array.isArray(tool.signals) ? tool.signals : []).map((signal) => h('li', {},
        h('code', { text: String(signal?.id ?? '') }), signal?.detail ? ` ${signal.detail}` : '')))))));
    if (!tools.length) ui.scanResults.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No tools found.' })));
    const summary = scan?.summary;
    ui.scanSummary.textContent = typeof summary === 'string' ? summary : summary && typeof summary === 'object'
      ? Object.entries(summary).map(([k, v]) => `${k}: ${typeof v === 'object' ? compactJson(v, 80) : v}`).join(' · ')
      : '';
    if (scan?.policy) {
      this.#scanPolicy = scan.policy;
      ui.scanApply.disabled = false;
    }
  }

  async #runPinsDiff() {
    const ui = this.#ui;
    ui.pinsError.textContent = '';
    ui.pinsSummary.textContent = '';
    ui.pinsResults.replaceChildren();
    const parse = (area, which) => {
      try {
        return JSON.parse(area.value);
      } catch (error) {
        throw new Error(`The ${which} capture is not valid JSON: ${error.message}`);
      }
    };
    let diff;
    try {
      const before = parse(ui.pinsBefore, 'pinned');
      const after = parse(ui.pinsAfter, 'current');
      const { diffToolLists } = await import('../../lib/pin-diff.js');
      diff = diffToolLists(before, after);
    } catch (error) {
      ui.pinsError.textContent = error?.message ?? String(error);
      return;
    }
    const flagged = new Map(diff.poisoning.map((f) => [f.tool, f.signals]));
    ui.pinsResults.replaceChildren(...diff.rows.map((row) => h('tr', { testid: 'pins-row', 'data-name': row.name, 'data-status': row.status, 'data-blocked': String(row.blocked) },
      h('td', {}, h('code', { text: row.name })),
      h('td', { text: row.status }),
      h('td', {}, h('span', { class: 'risk', 'data-risk': row.blocked ? 'critical' : 'low', text: row.blocked ? 'blocked' : 'allowed' }), ` ${row.why}`),
      h('td', {},
        h('ul', { class: 'signals' }, row.changes.map((change) => h('li', { testid: 'pins-change', 'data-field': change.field },
          h('code', { text: change.field }), h('div', { text: `pinned: ${change.before}` }), h('div', { text: `now: ${change.after}` })))),
        flagged.has(row.name) ? h('ul', { class: 'signals', testid: 'pins-poisoning' }, flagged.get(row.name).map((signal) => h('li', {},
          h('code', { text: signal.id }), ` ${signal.detail}`))) : null))));
    if (!diff.rows.length) ui.pinsResults.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No tools in either capture.' })));
    const blocked = diff.rows.filter((row) => row.blocked && row.status !== 'removed').length;
    ui.pinsSummary.textContent = `${diff.rows.length} tools: ${blocked} would be blocked by pins from the first capture, `
      + `${diff.rows.filter((row) => row.status === 'removed').length} no longer listed, ${diff.poisoning.length} flagged for instructions to the model.`;
  }

  async #applyScan() {
    if (!this.#scanPolicy) return;
    const text = typeof this.#scanPolicy === 'string' ? this.#scanPolicy : JSON.stringify(this.#scanPolicy, null, 2);
    const firstTool = this.#ui.scanResults.querySelector('[data-testid=scan-row]')?.dataset.name ?? '';
    await this.#loadPolicy(text, [], null);
    this.#ui.tool.value = firstTool;
    this.#ui.arguments.value = '{}';
    await this.#preview();
  }

  // ------------------------------------------------------------ share and notices

  #state() {
    const ui = this.#ui;
    return {
      v: 1,
      preset: ui.preset.value || undefined,
      policy: this.policyText,
      tests: this.#tests,
      composer: {
        tool: ui.tool.value,
        arguments: ui.arguments.value,
        grant: ui.grant.value,
        grantAttributes: ui.grantAttributes.value,
        clock: ui.clock.value,
        repeatCount: ui.repeatCount.value,
        repeatSpan: ui.repeatSpan.value,
      },
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
