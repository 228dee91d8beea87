// Two tools/list captures compared as toolgate's pins would see them: which
// tools changed (field by field, as RFC 8785 JSON), which appeared or went,
// and which a pin made from the first capture would block. Plain ES module,
// no I/O: the playground's "Compare two captures" panel uses it.
import { toolsOf } from './scan.js';
import { canonicalDefinition, changedFields, toolDefinition } from '../worker/pins.js';
import { canonicalJson } from '../worker/audit.js';
import { findPoisoning } from './poisoning.js';

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function byName(input, which) {
  const tools = new Map();
  toolsOf(input).forEach((tool, i) => {
    if (!isObject(tool) || typeof tool.name !== 'string') throw new TypeError(`${which} capture: tools[${i}] has no string "name"`);
    if (tools.has(tool.name)) throw new TypeError(`${which} capture lists tool ${JSON.stringify(tool.name)} twice`);
    tools.set(tool.name, tool);
  });
  return tools;
}

const shown = (value) => (value === undefined ? '(absent)' : canonicalJson(value));

/**
 * @param {unknown} before the capture pinned (a tools/list result, a JSON-RPC response, or an array of tools)
 * @param {unknown} after the capture the server shows now
 * @returns {{rows: {name: string, status: 'unchanged'|'changed'|'added'|'removed', blocked: boolean, why: string,
 *   changes: {field: string, before: string, after: string}[]}[], poisoning: ReturnType<typeof findPoisoning>}}
 *   blocked: what toolgate --pins (pinned from `before`) does to the tool: a changed or unpinned tool
 *   leaves tools/list and its calls are denied (tool_changed); a removed one is not listed, and its calls
 *   are denied as not seen.
 */
export function diffToolLists(before, after) {
  const pinned = byName(before, 'the first');
  const now = byName(after, 'the second');
  const rows = [];
  for (const [name, tool] of now) {
    const pin = pinned.get(name);
    if (!pin) {
      rows.push({ name, status: 'added', blocked: true, why: 'not pinned: hidden from tools/list, calls denied (tool_changed)', changes: [] });
      continue;
    }
    const a = canonicalDefinition(toolDefinition(pin));
    const b = canonicalDefinition(toolDefinition(tool));
    const fields = changedFields(a, b);
    if (fields.length === 0) {
      rows.push({ name, status: 'unchanged', blocked: false, why: 'as pinned: listed and callable', changes: [] });
      continue;
    }
    const changes = fields.map((field) => ({ field, before: shown(pin[field]), after: shown(tool[field]) }));
    rows.push({ name, status: 'changed', blocked: true, why: `changed (${fields.join(', ')}): hidden from tools/list, calls denied (tool_changed)`, changes });
  }
  for (const name of pinned.keys()) {
    if (!now.has(name)) rows.push({ name, status: 'removed', blocked: true, why: 'no longer listed: calls denied (toolgate has not seen it)', changes: [] });
  }
  return { rows, poisoning: findPoisoning([...now.values()]) };
}
