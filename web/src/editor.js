// The policy editor and its diagnostics: CodeMirror 6 with JSON, schema
// completion and hover (schema/policy.schema.json), the core's diagnostics
// inline and as a clickable list, and the highlight of the rule that decided
// the last call. It knows nothing of calls or sessions; the element tells it
// what to show.
import { EditorView, basicSetup } from 'codemirror';
import { EditorState, StateEffect, StateField } from '@codemirror/state';
import { Decoration, hoverTooltip } from '@codemirror/view';
import { json, jsonLanguage } from '@codemirror/lang-json';
import { lintGutter, setDiagnostics } from '@codemirror/lint';
import { jsonCompletion, jsonSchemaHover, stateExtensions } from 'codemirror-json-schema';
import policySchema from '../../schema/policy.schema.json';
import { h } from './dom.js';

/** Above this many characters: a longer debounce, no live relocation of the rule. */
export const LARGE_DOC = 1_000_000;
const MAX_DIAGNOSTICS_RENDERED = 200;

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

/** The "Policy" panel: status, editor, problem list. `onEdit` runs after each change of the text. */
export class PolicyEditor {
  #view = null;
  #onEdit;

  constructor({ onEdit }) {
    this.#onEdit = onEdit;
    this.status = h('span', { class: 'status', 'data-state': 'checking', text: 'loading…' });
    this.container = h('div', { class: 'editor', testid: 'editor' });
    this.diagnostics = h('ul', { class: 'diagnostics', testid: 'diagnostics', 'aria-label': 'Problems in the policy' });
    this.panel = h('section', { class: 'panel editor-panel', 'aria-label': 'Policy editor' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Policy' }), this.status),
      this.container,
      this.diagnostics);
  }

  /** Creates the CodeMirror view, once the panel is inside the shadow root `root`. */
  mount(root) {
    this.#view = new EditorView({ root, parent: this.container, state: this.#state('') });
  }

  get mounted() {
    return this.#view !== null;
  }

  /** The editor's text. */
  get text() {
    return this.#view ? this.#view.state.doc.toString() : '';
  }

  get length() {
    return this.#view.state.doc.length;
  }

  #state(text) {
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
          if (update.docChanged) this.#onEdit();
        }),
        EditorView.contentAttributes.of({ 'aria-label': 'Policy JSON' }),
      ],
    });
  }

  /** Replaces the whole text (a new policy): no highlight, cursor and scroll at the top. */
  setText(text) {
    const view = this.#view;
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: String(text) },
      effects: setRuleHighlight.of(null),
      selection: { anchor: 0 },
    });
    this.#scrollTo(0, 'start');
  }

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  // Scrolls the editor's own scroller, never the page, so that `pos` shows.
  // CodeMirror's scrollIntoView also scrolls every scrollable ancestor and the
  // window: on a page that embeds the component, loading a policy or deciding
  // a call would move the reader's page. (Clicking a diagnostic or "Show in
  // policy" still uses it: the reader asked to be taken there.)
  #scrollTo(pos, where) {
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

  /** The core's diagnostics, inline (lint) and in the problem list (at most 200 items). */
  showDiagnostics(diagnostics) {
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
    this.diagnostics.replaceChildren(...items);
    view.dispatch(setDiagnostics(view.state, cmDiagnostics));
  }

  /**
   * Highlights the rule (a JSON Pointer; none: no highlight) where `locate`
   * (Toolgate.locate) finds it in the text. `scroll`: bring it into the
   * editor's view; `focus`: the reader asked to be taken there (page included).
   */
  highlightRule(rule, locate, { scroll, focus = false }) {
    const view = this.#view;
    if (!view) return;
    if (!rule) {
      view.dispatch({ effects: setRuleHighlight.of(null) });
      return;
    }
    const text = view.state.doc.toString();
    if (!scroll && text.length > LARGE_DOC) return;
    let at = null;
    try {
      at = locate(text, rule);
    } catch {
      at = null;
    }
    if (!at) return; // not JSON right now: keep the mapped highlight
    const from = Math.min(offsetOf(view.state.doc, at.line, at.column), view.state.doc.length);
    const to = tokenEnd(view.state.doc, from);
    const effects = [setRuleHighlight.of({ from, to })];
    if (focus) {
      effects.push(EditorView.scrollIntoView(from, { y: 'center' }));
      view.dispatch({ effects, selection: { anchor: from, head: to } });
      view.focus();
      return;
    }
    view.dispatch({ effects });
    if (scroll) this.#scrollTo(from, 'center');
  }
}
