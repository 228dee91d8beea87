// The tools/list panels: "Scan a server's tools" (lib/scan.js classifies each
// tool, lib/poisoning.js flags instructions to the model, and "Use as
// policy" loads the starter policy) and "Pins" (two captures compared as
// `toolgate --pins` would see them, lib/pin-diff.js). The scanner modules
// load on first use, so the playground's first paint does not wait for them.
import { h } from './dom.js';
import { compactJson } from './format.js';

export class ScanPanel {
  #policy = null;

  /** `onApply(policyText, firstTool)`: "Use as policy" was clicked. */
  constructor({ onApply }) {
    this.input = h('textarea', { id: 'scan-input', testid: 'scan-input', rows: 5, spellcheck: 'false', placeholder: '{"tools": [{"name": "run", "description": "…", "inputSchema": {…}}]}' });
    this.runButton = h('button', { type: 'button', testid: 'scan-run', onclick: () => this.run() }, 'Scan');
    this.apply = h('button', { type: 'button', testid: 'scan-apply', disabled: true, onclick: () => {
      if (!this.#policy) return;
      const text = typeof this.#policy === 'string' ? this.#policy : JSON.stringify(this.#policy, null, 2);
      onApply(text, this.results.querySelector('[data-testid=scan-row]')?.dataset.name ?? '');
    } }, 'Use as policy');
    this.error = h('div', { class: 'error-text', role: 'alert', testid: 'scan-error' });
    this.summary = h('p', { class: 'hint' });
    this.results = h('tbody', { testid: 'scan-results' });
    this.panel = h('section', { class: 'panel scan-panel', 'aria-label': 'Scan a server' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Scan a server’s tools' })),
      h('div', { class: 'field' }, h('label', { for: 'scan-input', text: 'Paste the result of tools/list (JSON)' }), this.input),
      h('div', { class: 'row' }, this.runButton, this.apply),
      this.error,
      this.summary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'scan-table' },
          h('thead', {}, h('tr', {}, ['Tool', 'Category', 'Risk', 'Signals'].map((t) => h('th', { scope: 'col', text: t })))),
          this.results)));
  }

  async run() {
    this.error.textContent = '';
    this.summary.textContent = '';
    this.results.replaceChildren();
    this.apply.disabled = true;
    this.#policy = null;
    let input;
    try {
      input = JSON.parse(this.input.value);
    } catch (error) {
      this.error.textContent = `The tools/list result is not valid JSON: ${error.message}`;
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
        this.error.textContent = error instanceof ScanError ? error.message : `The scan failed: ${error?.message ?? error}`;
        return;
      }
    } catch (error) {
      this.error.textContent = `The scanner could not be loaded: ${error?.message ?? error}`;
      return;
    }
    const tools = Array.isArray(scan?.tools) ? scan.tools : [];
    this.results.replaceChildren(...tools.map((tool) => h('tr', { testid: 'scan-row', 'data-name': tool.name, 'data-category': tool.category, 'data-risk': tool.risk },
      h('td', {}, h('code', { text: String(tool.name) })),
      h('td', { text: String(tool.category ?? '') }),
      h('td', {}, h('span', { class: 'risk', 'data-risk': tool.risk, text: String(tool.risk ?? '') })),
      h('td', {}, h('ul', { class: 'signals' }, (Array.isArray(tool.signals) ? tool.signals : []).map((signal) => h('li', {},
        h('code', { text: String(signal?.id ?? '') }), signal?.detail ? ` ${signal.detail}` : '')))))));
    if (!tools.length) this.results.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No tools found.' })));
    const summary = scan?.summary;
    this.summary.textContent = typeof summary === 'string' ? summary : summary && typeof summary === 'object'
      ? Object.entries(summary).map(([k, v]) => `${k}: ${typeof v === 'object' ? compactJson(v, 80) : v}`).join(' · ')
      : '';
    if (scan?.policy) {
      this.#policy = scan.policy;
      this.apply.disabled = false;
    }
  }
}

export class PinsPanel {
  constructor() {
    this.before = h('textarea', { id: 'pins-before', testid: 'pins-before', rows: 5, spellcheck: 'false', placeholder: 'The capture you reviewed and pinned: {"tools": [...]}' });
    this.after = h('textarea', { id: 'pins-after', testid: 'pins-after', rows: 5, spellcheck: 'false', placeholder: 'What the server lists now: {"tools": [...]}' });
    this.runButton = h('button', { type: 'button', testid: 'pins-run', onclick: () => this.run() }, 'Compare');
    this.error = h('div', { class: 'error-text', role: 'alert', testid: 'pins-error' });
    this.summary = h('p', { class: 'hint', testid: 'pins-summary' });
    this.results = h('tbody', { testid: 'pins-results' });
    this.panel = h('section', { class: 'panel scan-panel', 'aria-label': 'Compare two tools/list captures' },
      h('div', { class: 'panel-head' }, h('h2', { text: 'Pins: compare two tools/list captures' })),
      h('p', { class: 'hint', text: 'With toolgate serve/stdio --pins made from the first capture (toolgate pin), a tool that changed or is not pinned leaves tools/list and its calls are denied (tool_changed).' }),
      h('div', { class: 'field' }, h('label', { for: 'pins-before', text: 'Pinned capture (tools/list JSON)' }), this.before),
      h('div', { class: 'field' }, h('label', { for: 'pins-after', text: 'Current capture (tools/list JSON)' }), this.after),
      h('div', { class: 'row' }, this.runButton),
      this.error,
      this.summary,
      h('div', { class: 'table-wrap' },
        h('table', { class: 'scan-table' },
          h('thead', {}, h('tr', {}, ['Tool', 'Status', 'With pins', 'What changed'].map((t) => h('th', { scope: 'col', text: t })))),
          this.results)));
  }

  async run() {
    this.error.textContent = '';
    this.summary.textContent = '';
    this.results.replaceChildren();
    const parse = (area, which) => {
      try {
        return JSON.parse(area.value);
      } catch (error) {
        throw new Error(`The ${which} capture is not valid JSON: ${error.message}`);
      }
    };
    let diff;
    try {
      const before = parse(this.before, 'pinned');
      const after = parse(this.after, 'current');
      const { diffToolLists } = await import('../../lib/pin-diff.js');
      diff = diffToolLists(before, after);
    } catch (error) {
      this.error.textContent = error?.message ?? String(error);
      return;
    }
    const flagged = new Map(diff.poisoning.map((f) => [f.tool, f.signals]));
    this.results.replaceChildren(...diff.rows.map((row) => h('tr', { testid: 'pins-row', 'data-name': row.name, 'data-status': row.status, 'data-blocked': String(row.blocked) },
      h('td', {}, h('code', { text: row.name })),
      h('td', { text: row.status }),
      h('td', {}, h('span', { class: 'risk', 'data-risk': row.blocked ? 'critical' : 'low', text: row.blocked ? 'blocked' : 'allowed' }), ` ${row.why}`),
      h('td', {},
        h('ul', { class: 'signals' }, row.changes.map((change) => h('li', { testid: 'pins-change', 'data-field': change.field },
          h('code', { text: change.field }), h('div', { text: `pinned: ${change.before}` }), h('div', { text: `now: ${change.after}` })))),
        flagged.has(row.name) ? h('ul', { class: 'signals', testid: 'pins-poisoning' }, flagged.get(row.name).map((signal) => h('li', {},
          h('code', { text: signal.id }), ` ${signal.detail}`))) : null))));
    if (!diff.rows.length) this.results.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No tools in either capture.' })));
    const blocked = diff.rows.filter((row) => row.blocked && row.status !== 'removed').length;
    this.summary.textContent = `${diff.rows.length} tools: ${blocked} would be blocked by pins from the first capture, `
      + `${diff.rows.filter((row) => row.status === 'removed').length} no longer listed, ${diff.poisoning.length} flagged for instructions to the model.`;
  }
}
