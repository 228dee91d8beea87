// toolgate scan: classify the tools of an MCP server's `tools/list` answer as
// read / write / execute / destructive, explain each verdict with signals, and
// write a starter policy from it. Plain ES module, no dependencies, no I/O: the
// browser playground and the `toolgate scan` CLI both use it. The rules are
// documented (as tables) in lib/README.md; keep the two in step.
//
// Tool names and other server-provided strings are kept verbatim as data.
// Poisoning signals (instructions to the model hidden in texts) are
// ./poisoning.js's, added to a scan's classifications by flagPoisoned(). This
// module never escapes them for HTML (that is the UI's job); formatScan, which
// renders for terminals, makes control characters visible.

/** Thrown for input that is not a tools/list result, a JSON-RPC response or an array of tools. */
export class ScanError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ScanError';
  }
}

export const CATEGORIES = Object.freeze(['read', 'write', 'execute', 'destructive']);
const RANK = { read: 0, write: 1, execute: 2, destructive: 3 };

// Whole words, after splitting names on camelCase, snake_case, kebab-case, dots,
// slashes and spaces, lower-cased.
const VERBS = {
  destructive: [
    'delete', 'del', 'remove', 'rm', 'rmdir', 'drop', 'destroy', 'purge', 'wipe', 'truncate',
    'kill', 'terminate', 'revoke', 'erase', 'unlink', 'uninstall', 'shred', 'clear', 'reset',
  ],
  execute: [
    'run', 'exec', 'execute', 'eval', 'evaluate', 'shell', 'command', 'cmd', 'bash',
    'deploy', 'invoke', 'spawn', 'start', 'launch', 'trigger',
  ],
  write: [
    'write', 'create', 'update', 'set', 'edit', 'move', 'rename', 'add', 'insert', 'put',
    'patch', 'upload', 'send', 'post', 'toggle', 'modify', 'change', 'save', 'append',
    'replace', 'upsert', 'push', 'publish', 'commit', 'merge', 'copy', 'mkdir', 'enable',
    'disable', 'assign', 'attach', 'submit', 'store', 'mutate', 'apply',
  ],
  read: [
    'get', 'list', 'read', 'search', 'find', 'open', 'view', 'fetch', 'status', 'describe',
    'logs', 'tables', 'spec', 'info', 'show', 'retrieve', 'lookup', 'inspect', 'count',
    'stat', 'stats', 'print', 'display', 'preview', 'browse', 'return',
  ],
};
const VERB_CATEGORY = new Map();
for (const category of ['read', 'write', 'execute', 'destructive']) {
  for (const word of VERBS[category]) VERB_CATEGORY.set(word, category);
}
// "query" / "sql" in a name mean "runs code" only when the tool takes code-like input
// (runOneoffQuery, a SQL server's `query`), not for simulate-research-query(topic).
const CONDITIONAL_EXECUTE = new Set(['query', 'sql']);

// Property-name words (same splitting) behind the input signals.
const PATH_WORDS = new Set([
  'path', 'paths', 'filepath', 'filepaths', 'pathname', 'file', 'files', 'filename', 'filenames',
  'dir', 'dirs', 'directory', 'directories', 'folder', 'folders', 'source', 'destination',
  'src', 'dest', 'cwd',
]);
const CREDENTIAL_WORDS = new Set([
  'token', 'secret', 'secrets', 'password', 'passwords', 'passwd', 'passphrase', 'key', 'keys',
  'apikey', 'credential', 'credentials', 'env', 'environment', 'auth', 'authorization', 'bearer',
  'cookie', 'cookies',
]);
const CODE_WORDS = new Set([
  'code', 'query', 'command', 'commands', 'cmd', 'script', 'sql', 'expression', 'statement',
  'snippet', 'program',
]);
const ARGV_WORDS = new Set(['args', 'argv', 'arguments']); // code-like only as a list (a command line)
/** Every word list the rules use (read-only), e.g. for a legend in a UI. */
export const WORDS = Object.freeze({
  destructive: Object.freeze([...VERBS.destructive]),
  execute: Object.freeze([...VERBS.execute]),
  write: Object.freeze([...VERBS.write]),
  read: Object.freeze([...VERBS.read]),
  executeWithCodeInput: Object.freeze([...CONDITIONAL_EXECUTE]),
  paths: Object.freeze([...PATH_WORDS]),
  credentials: Object.freeze([...CREDENTIAL_WORDS]),
  code: Object.freeze([...CODE_WORDS]),
  commandLine: Object.freeze([...ARGV_WORDS]),
});
const PATH_IN_DESCRIPTION = /\b(?:file|directory|folder)[ _-]?paths?\b|\bfile ?system\b/i;
const MAX_PARAMETERS = 6;

// Bounds for walking hostile schemas.
const MAX_DEPTH = 8;
const MAX_NODES = 2000;

/** Splits an identifier into lower-case words: envRemove → env remove; read_text_file; get-sum; HTTPServer → http server. */
export function splitWords(text) {
  if (typeof text !== 'string') return [];
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function higher(a, b) {
  return RANK[a] >= RANK[b] ? a : b;
}

// The description's leading verb: its first word, or the second when the first is
// an adverb ("Recursively search ..."). Third person is reduced: Runs → run, Echoes → echo.
function leadingWord(description) {
  if (typeof description !== 'string') return null;
  const words = description.trim().slice(0, 200).match(/[A-Za-z]+/g);
  if (!words) return null;
  let word = words[0];
  if (/ly$/i.test(word) && word.length > 4 && words[1]) word = words[1];
  return word;
}

function lookupVerb(word, inflected) {
  const lower = word.toLowerCase();
  if (VERB_CATEGORY.has(lower)) return { category: VERB_CATEGORY.get(lower), word: lower };
  if (inflected) {
    for (const stem of [lower.replace(/es$/, ''), lower.replace(/s$/, '')]) {
      if (stem !== lower && VERB_CATEGORY.has(stem)) return { category: VERB_CATEGORY.get(stem), word: stem };
    }
  }
  return null;
}

function schemaType(schema) {
  return isObject(schema) ? schema.type : undefined;
}

function isArraySchema(schema) {
  const type = schemaType(schema);
  return type === 'array' || (Array.isArray(type) && type.includes('array'));
}

// Every property of the input schema, nested ones included (through properties,
// items, additionalProperties, anyOf/oneOf/allOf), as { label, words, schema }.
function collectProperties(inputSchema) {
  const found = [];
  const seen = new Set();
  let nodes = 0;
  const visit = (schema, prefix, depth) => {
    if (!isObject(schema) || depth > MAX_DEPTH || seen.has(schema) || nodes > MAX_NODES) return;
    seen.add(schema);
    nodes += 1;
    if (isObject(schema.properties)) {
      for (const name of Object.keys(schema.properties)) {
        if (nodes > MAX_NODES) return;
        const child = schema.properties[name];
        const label = prefix ? `${prefix}.${name}` : name;
        found.push({ label, words: splitWords(name), name, schema: child });
        visit(child, label, depth + 1);
      }
    }
    const items = Array.isArray(schema.items) ? schema.items : [schema.items];
    for (const item of items) visit(item, prefix ? `${prefix}[]` : '[]', depth + 1);
    visit(schema.additionalProperties, prefix ? `${prefix}.*` : '*', depth + 1);
    for (const keyword of ['anyOf', 'oneOf', 'allOf']) {
      if (Array.isArray(schema[keyword])) for (const sub of schema[keyword]) visit(sub, prefix, depth + 1);
    }
  };
  visit(inputSchema, '', 0);
  return found;
}

function quoteList(labels) {
  const shown = labels.slice(0, 5).map((l) => JSON.stringify(l));
  return labels.length > 5 ? `${shown.join(', ')} and ${labels.length - 5} more` : shown.join(', ');
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// What the annotations claim, or null. Only explicit `true`/`false` hints count.
function annotationClaim(annotations) {
  if (!isObject(annotations)) return null;
  const { readOnlyHint, destructiveHint } = annotations;
  if (destructiveHint === true) {
    return {
      category: 'destructive',
      detail: readOnlyHint === true
        ? 'destructiveHint: true (with readOnlyHint: true; contradictory hints, the riskier one counts)'
        : 'destructiveHint: true',
    };
  }
  if (readOnlyHint === true) return { category: 'read', detail: 'readOnlyHint: true' };
  if (readOnlyHint === false) return { category: 'write', detail: 'readOnlyHint: false (modifies its environment)' };
  return null;
}

/**
 * Classifies one MCP tool ({name, title?, description?, inputSchema, annotations?}).
 * @returns {{name: string, category: 'read'|'write'|'execute'|'destructive', risk: 'low'|'medium'|'high'|'critical', signals: {id: string, detail: string}[]}}
 */
export function classifyTool(tool) {
  if (!isObject(tool)) throw new ScanError(`a tool must be an object, got ${describe(tool)}`);
  if (typeof tool.name !== 'string' || tool.name === '') {
    throw new ScanError(`a tool must have a non-empty string "name", got ${describe(tool.name)}`);
  }
  const { name } = tool;
  const title = typeof tool.title === 'string' ? tool.title
    : isObject(tool.annotations) && typeof tool.annotations.title === 'string' ? tool.annotations.title : '';
  const description = typeof tool.description === 'string' ? tool.description : '';
  const properties = collectProperties(tool.inputSchema);
  const topLevel = isObject(tool.inputSchema) && isObject(tool.inputSchema.properties)
    ? Object.keys(tool.inputSchema.properties) : [];

  const nameWords = splitWords(name);
  const titleWords = splitWords(title);

  // Code-like input (decides "query"/"sql" in names, and arbitrary_code).
  const codeProperties = properties
    .filter((p) => p.words.some((w) => CODE_WORDS.has(w)) || (ARGV_WORDS.has(p.name.toLowerCase()) && isArraySchema(p.schema)))
    .map((p) => p.label);

  // 1. Verbs: every word of the name and title, and the description's leading verb.
  let verb = null; // { category, detail }
  const consider = (category, detail) => {
    if (!verb || RANK[category] > RANK[verb.category]) verb = { category, detail };
  };
  for (const [source, words] of [['name', nameWords], ['title', titleWords]]) {
    for (const word of words) {
      const hit = lookupVerb(word, false);
      if (hit) consider(hit.category, `${source} word "${hit.word}" → ${hit.category}`);
      else if (CONDITIONAL_EXECUTE.has(word) && codeProperties.length > 0) {
        consider('execute', `${source} word "${word}" with code-like input ${quoteList(codeProperties)} → execute`);
      }
    }
  }
  const lead = leadingWord(description);
  if (lead) {
    const hit = lookupVerb(lead, true);
    if (hit) consider(hit.category, `description starts with "${lead}" → ${hit.category}`);
  }

  // 2. Annotations: untrusted hints, so they can raise the category but never lower it.
  const claim = annotationClaim(tool.annotations);

  const signals = [];
  let category;
  if (!verb && !claim) {
    category = 'write';
    signals.push({ id: 'unknown_verb', detail: 'no known verb in the name, title or description, and no annotation: treated as write (unknown = cautious)' });
  } else {
    category = higher(claim ? claim.category : 'read', verb ? verb.category : 'read');
    if (claim && claim.category === category) {
      signals.push({ id: 'annotation', detail: `${claim.detail} → ${claim.category}` });
    }
    if (verb) signals.push({ id: 'verb', detail: verb.detail });
    if (claim && claim.category !== category) {
      signals.push({
        id: 'annotation_overridden',
        detail: `${claim.detail} says ${claim.category}, but the ${verb.detail}; annotations are untrusted hints, so the riskier category counts`,
      });
    }
  }

  if (category === 'execute' && codeProperties.length > 0) {
    signals.push({ id: 'arbitrary_code', detail: `takes code or a command line: ${quoteList(codeProperties)}` });
  }
  const pathProperties = properties.filter((p) => p.words.some((w) => PATH_WORDS.has(w))).map((p) => p.label);
  if (pathProperties.length > 0) {
    signals.push({ id: 'accepts_paths', detail: `path-like input ${quoteList(pathProperties)}` });
  } else if (PATH_IN_DESCRIPTION.test(description)) {
    signals.push({ id: 'accepts_paths', detail: `description mentions "${description.match(PATH_IN_DESCRIPTION)[0]}"` });
  }
  const credentialSources = [];
  const nameCredential = nameWords.find((w) => CREDENTIAL_WORDS.has(w)) ?? titleWords.find((w) => CREDENTIAL_WORDS.has(w));
  if (nameCredential) credentialSources.push(`name mentions "${nameCredential}"`);
  const credentialProperties = properties.filter((p) => p.words.some((w) => CREDENTIAL_WORDS.has(w))).map((p) => p.label);
  if (credentialProperties.length > 0) credentialSources.push(`input ${quoteList(credentialProperties)}`);
  if (credentialSources.length > 0) {
    signals.push({ id: 'handles_credentials', detail: credentialSources.join('; ') });
  }
  if (topLevel.length > MAX_PARAMETERS) {
    signals.push({ id: 'high_parameter_count', detail: `${topLevel.length} input properties (more than ${MAX_PARAMETERS})` });
  }
  if (isObject(tool.annotations) && tool.annotations.openWorldHint === true) {
    signals.push({ id: 'open_world', detail: 'openWorldHint: true (reaches external systems)' });
  }

  return { name, category, risk: riskOf(category, signals), signals };
}

function riskOf(category, signals) {
  const has = (id) => signals.some((s) => s.id === id);
  switch (category) {
    case 'read': return has('accepts_paths') || has('handles_credentials') ? 'medium' : 'low';
    case 'write': return has('accepts_paths') || has('handles_credentials') ? 'high' : 'medium';
    case 'execute': return has('arbitrary_code') ? 'critical' : 'high';
    default: return 'critical';
  }
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'object') return `an object with keys ${JSON.stringify(Object.keys(value).slice(0, 5))}`;
  return typeof value === 'undefined' ? 'nothing' : `${typeof value} ${String(value)}`;
}

const SHAPES = 'a tools/list result {"tools": [...]}, a JSON-RPC response {"jsonrpc": "2.0", "id": ..., "result": {"tools": [...]}}, or an array of tools';

/** The tools array of a tools/list result, a JSON-RPC response carrying one, or an array of tools; ScanError otherwise. */
export function toolsOf(input) {
  if (Array.isArray(input)) return input;
  if (typeof input === 'string') {
    throw new ScanError(`expected ${SHAPES}, got a string (parse the JSON first)`);
  }
  if (!isObject(input)) throw new ScanError(`expected ${SHAPES}, got ${describe(input)}`);
  if (Array.isArray(input.tools)) return input.tools;
  if ('error' in input && !('result' in input)) {
    const message = isObject(input.error) && typeof input.error.message === 'string' ? `: ${input.error.message}` : '';
    throw new ScanError(`the JSON-RPC response is an error, not a tools/list result${message}`);
  }
  if (isObject(input.result) && Array.isArray(input.result.tools)) return input.result.tools;
  if ('tools' in input) throw new ScanError(`"tools" must be an array, got ${describe(input.tools)}`);
  if (isObject(input.result) && 'tools' in input.result) {
    throw new ScanError(`"result.tools" must be an array, got ${describe(input.result.tools)}`);
  }
  throw new ScanError(`expected ${SHAPES}, got ${describe(input)}`);
}

/**
 * Classifies every tool of a tools/list answer and writes a starter policy.
 * @returns {{tools: object[], policy: object, summary: {read: number, write: number, execute: number, destructive: number}}}
 */
export function scanTools(toolsListResult, { hideFlagged = false } = {}) {
  const list = toolsOf(toolsListResult);
  const tools = list.map((tool, i) => {
    if (!isObject(tool)) throw new ScanError(`tools[${i}] must be a tool object, got ${describe(tool)}`);
    if (typeof tool.name !== 'string' || tool.name === '') {
      throw new ScanError(`tools[${i}] has no string "name" (got ${describe(tool.name)})`);
    }
    return classifyTool(tool);
  });
  const summary = { read: 0, write: 0, execute: 0, destructive: 0 };
  for (const t of tools) summary[t.category] += 1;
  return { tools, policy: starterPolicy(tools, { hideFlagged }), summary };
}

// A lone UTF-16 surrogate cannot be written as valid JSON text (the core rejects it).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function defineKey(object, key, value) {
  // defineProperty, so "__proto__" becomes an ordinary key.
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

// A tool the scan flags handles_credentials (envGet, get-env, a key or token
// among its inputs) can hand secrets to an agent, or change them: the starter
// policy never lets it run unattended. A human approves each call (the
// category's rate limit still applies on top).
const needsApproval = (c) => c.signals.some((signal) => isObject(signal) && signal.id === 'handles_credentials');

/**
 * The starter policy for classified tools: default deny; read → {}; write → 30/minute;
 * execute → 10/minute; destructive → hidden; and any that handles credentials (signal
 * handles_credentials) → "action": "require_approval" as well.
 */
export function starterPolicy(classifications, { hideFlagged = false } = {}) {
  if (!Array.isArray(classifications)) {
    throw new ScanError(`starterPolicy expects an array of classifications, got ${describe(classifications)}`);
  }
  // One category per name: a duplicated name gets its riskiest classification,
  // and needs approval if any of its classifications does.
  const byName = new Map();
  classifications.forEach((c, i) => {
    if (!isObject(c) || typeof c.name !== 'string' || c.name === '' || !Object.hasOwn(RANK, c.category)
      || (c.signals !== undefined && !Array.isArray(c.signals))) {
      throw new ScanError(`classifications[${i}] must be {name, category, signals?} with a non-empty name, a category of ${CATEGORIES.join('/')} and signals an array`);
    }
    const approval = needsApproval({ signals: c.signals ?? [] });
    const flagged = hideFlagged && c.flagged === true;
    const held = byName.get(c.name);
    byName.set(c.name, held
      ? { category: higher(held.category, c.category), approval: held.approval || approval, flagged: held.flagged || flagged }
      : { category: c.category, approval, flagged });
  });

  const counts = { read: 0, write: 0, execute: 0, destructive: 0 };
  const hide = [];
  const tools = {};
  const unaddressable = [];
  const approved = [];
  const flaggedNames = [];
  for (const [name, { category, approval, flagged }] of byName) {
    counts[category] += 1;
    if (LONE_SURROGATE.test(name)) { unaddressable.push(name); continue; }
    if (flagged) { hide.push(name); flaggedNames.push(name); continue; } // hideFlagged: hidden whatever its category
    if (category === 'destructive') { hide.push(name); continue; } // a "*" here hides more: fail-safe
    if (name.includes('*')) { unaddressable.push(name); continue; } // a key with "*" is a glob: would allow more
    const entry = {};
    if (approval) {
      entry.action = 'require_approval';
      approved.push(name);
    }
    if (category !== 'read') entry.rate_limit = category === 'write' ? '30/minute' : '10/minute';
    defineKey(tools, name, entry);
  }

  const parts = [
    [counts.read, 'read (allowed)'],
    [counts.write, 'write (30 calls/minute per grant)'],
    [counts.execute, 'execute (10 calls/minute per grant)'],
    [counts.destructive, 'destructive (hidden)'],
  ].filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
  let description = `Starter policy generated by toolgate scan from ${plural(byName.size, 'tool')}`
    + `${parts.length > 0 ? `: ${parts.join(', ')}` : ''}.`;
  if (approved.length > 0) {
    description += ` Whatever their category, tools that handle credentials (signal handles_credentials) need a human's approval`
      + ` for every call, so that secrets are not handed out unattended: ${quoteList(approved)}.`;
  }
  if (flaggedNames.length > 0) {
    description += ` Hidden because their descriptions or schemas show signs of instructions to the model: ${quoteList(flaggedNames)}.`;
  }
  description += ` ${byName.size > 0 ? 'Every other tool' : 'Every tool'} is denied. Review before use.`;
  if (unaddressable.length > 0) {
    description += ` ${plural(unaddressable.length, 'tool')} ${unaddressable.length === 1 ? 'is' : 'are'} left to the default deny: `
      + 'a name with "*" or invalid Unicode cannot be an exact policy key.';
  }
  return { version: '1', default: 'deny', description, hide, tools };
}

// Terminal output must not let a server's tool name move the cursor, recolour the
// screen or reorder text: C0/C1 controls, bidi overrides and line separators are shown
// as \u{..}.
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
/** Shows C0/C1 controls, bidi overrides, line separators and lone surrogates as \u{..}, for terminals. */
export function terminalSafe(text) {
  return String(text)
    .replace(UNSAFE_FOR_TERMINAL, (c) => `\\u{${c.codePointAt(0).toString(16)}}`)
    .replace(LONE_SURROGATES, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

const NAME_WIDTH = 48;
function fit(text, width) {
  const chars = Array.from(text);
  return chars.length > width ? `${chars.slice(0, width - 1).join('')}…` : text;
}
function pad(text, width) {
  return text + ' '.repeat(Math.max(0, width - Array.from(text).length));
}

/**
 * A plain-text table (name, category, risk, signals) for terminals, then a summary line.
 * options.details: also print each signal's detail under its tool.
 */
export function formatScan(result, options = {}) {
  const classifications = Array.isArray(result) ? result : isObject(result) && Array.isArray(result.tools) ? result.tools : null;
  if (!classifications) throw new ScanError(`formatScan expects the result of scanTools, got ${describe(result)}`);
  const rows = classifications.map((c) => [
    terminalSafe(fit(String(c.name), NAME_WIDTH)), // cut first, so no escape is cut
    terminalSafe(c.category),
    terminalSafe(c.risk),
    terminalSafe([...new Set((c.signals ?? []).map((s) => s.id))].join(', ')) || '-',
  ]);
  const header = ['TOOL', 'CATEGORY', 'RISK', 'SIGNALS'];
  const widths = header.map((h, col) => Math.max(Array.from(h).length, ...rows.map((r) => Array.from(r[col]).length)));
  const line = (cells) => cells.map((cell, col) => (col === cells.length - 1 ? cell : pad(cell, widths[col]))).join('  ').trimEnd();
  const out = [line(header)];
  classifications.forEach((c, i) => {
    out.push(line(rows[i]));
    if (options.details) {
      for (const s of c.signals ?? []) out.push(`    ${terminalSafe(s.id)}: ${terminalSafe(s.detail)}`);
    }
  });
  const summary = { read: 0, write: 0, execute: 0, destructive: 0 };
  for (const c of classifications) if (Object.hasOwn(summary, c.category)) summary[c.category] += 1;
  out.push('');
  out.push(`${plural(classifications.length, 'tool')}: ${summary.read} read, ${summary.write} write, `
    + `${summary.execute} execute, ${summary.destructive} destructive`);
  return `${out.join('\n')}\n`;
}
