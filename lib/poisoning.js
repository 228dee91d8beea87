// Signs that a tool's description or schema texts carry instructions to the
// model (tool poisoning), and multi-server shadowing. Plain ES module, no I/O:
// `toolgate scan`, `toolgate pin` and the playground use it.
//
// Each signal says what was found and where, so a person can judge it. The
// rules aim at what poisoning needs (text the user does not see, text that
// addresses the model rather than describing the tool, payloads to carry data
// out) and not at ordinary documentation: real servers' descriptions say
// "pass the selector to other tools" or name their own sibling tools, and
// those are not flagged. lib/README.md has the table of rules.

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

// Bounds for walking hostile schemas (as lib/scan.js).
const MAX_DEPTH = 8;
const MAX_NODES = 2000;
/** Descriptions longer than this are flagged (the longest in the real captures is about 1,050 characters). */
export const MAX_DESCRIPTION_CHARS = 2000;

// Invisible or reordering characters: Unicode tag characters (U+E0000-E007F,
// which spell ASCII no one sees), zero-width characters, bidi controls, and
// the other format characters.
const TAG_CHARS = /[\u{E0000}-\u{E007F}]/gu;
const ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF\u180E]/g;
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
const OTHER_FORMAT = /(?![\u{E0000}-\u{E007F}\u200B-\u200F\u2060\uFEFF\u180E\u202A-\u202E\u2066-\u2069\u061C\u00AD])\p{Cf}/gu;

// Tags and phrases that speak to the model instead of describing the tool.
const INSTRUCTION_TAG = /<\s*\/?\s*(important|system|instructions?|secret|hidden|admin|critical|context|assistant|ai|model)\b[^>]{0,40}>/i;
const INSTRUCTION_PHRASES = [
  /\bignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|other)\s+(?:instructions?|prompts?|rules?|directions?)/i,
  /\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention\s+(?:this\s+|it\s+)?to|notify|alert|show|reveal\s+(?:this\s+|it\s+)?to|let)\s+(?:the\s+)?user\b/i,
  /\bwithout\s+(?:telling|informing|notifying|asking|alerting)\s+(?:the\s+)?user\b/i,
  /\b(?:the\s+)?user\s+(?:must|should|need)\s+not\s+(?:know|see|be\s+told|notice)/i,
  /\b(?:hide|conceal|keep)\s+(?:this|it|these\s+\w+)\s+(?:secret\s+)?from\s+(?:the\s+)?user\b/i,
  /\bbefore\s+(?:using|calling|invoking)\s+(?:this|the|any)\s+tool\b[^.]{0,80}\b(?:read|call|send|pass|include|fetch|run)\b/i,
  /\botherwise\s+(?:the\s+)?tool\s+will\s+(?:not\s+work|fail|break|crash)/i,
  /\b(?:you|the\s+(?:assistant|model|ai|agent))\s+(?:must|should)\s+(?:always|first|now|also)\s+(?:call|use|read|send|include|pass|forward)/i,
  /\b(?:new|updated|override|system)\s+instructions?\s*:/i,
];
// Files and secrets a tool has no business asking the model for.
const SECRET_PATTERNS = [
  /~\/\.[\w-]+/,
  /\$HOME\/\.[\w-]+/,
  /\bid_(?:rsa|dsa|ecdsa|ed25519)\b/,
  /\.ssh\//,
  /\/etc\/(?:passwd|shadow|sudoers)\b/,
  /\.aws\/credentials\b/,
  /(?:^|[\s"'`(])\.env\b/,
  /\.(?:netrc|npmrc|pypirc|pgpass|git-credentials)\b/,
  /\bmcp\.json\b|\bclaude_desktop_config\.json\b/,
  /\b(?:private\s+key|api\s+keys?|access\s+tokens?|secret\s+keys?|passwords?|credentials?)\b[^.]{0,60}\b(?:pass|send|include|append|add|put|forward|provide)\b/i,
  /\b(?:pass|send|include|append|add|put|forward|provide)\b[^.]{0,60}\b(?:private\s+key|api\s+keys?|access\s+tokens?|secret\s+keys?|passwords?|credentials?|conversation\s+history|chat\s+history|system\s+prompt)\b/i,
];
// A run of base64 long enough to hide a message (letters, digits, + /, with
// both cases and a digit: long ordinary words do not qualify).
const BASE64_RUN = /[A-Za-z0-9+/]{48,}={0,2}/g;
const URL_RUN = /\b(?:https?|data):[^\s"'<>`]+/gi;
const MAX_URL_CHARS = 200;
const MAX_URL_QUERY_CHARS = 80;
// "<name> tool", `name`, "name": a tool named in running text.
const TOOL_MENTION = /[`'"]([A-Za-z][\w.\-/]{1,63})[`'"]|\b([A-Za-z][\w.\-/]{1,63})\s+tool\b/g;
const SERVER_MENTION = /\b(?:other|another|all|every|any)\s+(?:mcp\s+)?servers?\b|\bmcp\s+servers?\s+(?:named|called)\b/i;
// An identifier a person would not write as an ordinary word: snake_case,
// kebab-case, dotted, camelCase.
const looksLikeIdentifier = (word) => /[_.\-/]/.test(word) || /[a-z][A-Z]/.test(word);

// A tool name as a model may read it: compatibility forms folded, case and
// separators (_ - . / space) and invisible characters ignored.
const foldToolName = (name) => name.normalize('NFKC').toLowerCase().replace(/[\s_\-./\p{Cf}]/gu, '');

const codePoint = (c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
const clip = (text, max = 80) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** Every text of a tool the model reads: description, title, and the schema texts, with where each is. */
export function toolTexts(tool) {
  const texts = [];
  if (!isObject(tool)) return texts;
  if (typeof tool.name === 'string') texts.push({ where: 'name', text: tool.name });
  if (typeof tool.title === 'string') texts.push({ where: 'title', text: tool.title });
  if (typeof tool.description === 'string') texts.push({ where: 'description', text: tool.description });
  if (isObject(tool.annotations) && typeof tool.annotations.title === 'string') texts.push({ where: 'annotations.title', text: tool.annotations.title });
  let nodes = 0;
  const walk = (schema, where, depth) => {
    if (depth > MAX_DEPTH || nodes >= MAX_NODES) return;
    nodes += 1;
    if (Array.isArray(schema)) {
      schema.forEach((item, i) => walk(item, `${where}[${i}]`, depth + 1));
      return;
    }
    if (!isObject(schema)) {
      if (typeof schema === 'string') texts.push({ where, text: schema });
      return;
    }
    for (const [key, value] of Object.entries(schema)) {
      if (key === '$schema' || key === '$id' || key === '$ref' || key === 'type' || key === 'format' || key === 'pattern') continue;
      if (key === 'properties' && isObject(value)) {
        for (const [name, sub] of Object.entries(value)) {
          texts.push({ where: `${where}.properties`, text: name, key: true });
          walk(sub, `${where}.properties.${name}`, depth + 1);
        }
        continue;
      }
      walk(value, `${where}.${key}`, depth + 1);
    }
  };
  walk(tool.inputSchema, 'inputSchema', 0);
  walk(tool.outputSchema, 'outputSchema', 0);
  return texts;
}

/**
 * The poisoning signals of one tool: [{id, detail}], empty when none.
 * @param {object} tool a tool from tools/list
 * @param {{siblings?: Iterable<string>, others?: Map<string, string>}} [context]
 *   siblings: the names of this server's tools (mentioning them is ordinary);
 *   others: tool name -> server, for the tools of the other servers (shadowing)
 */
export function poisoningSignals(tool, { siblings = [], others = new Map() } = {}) {
  const signals = [];
  const own = new Set(siblings);
  if (isObject(tool) && typeof tool.name === 'string') own.add(tool.name);
  const once = new Set();
  const add = (id, detail) => {
    const key = `${id}\n${detail}`;
    if (once.has(key)) return;
    once.add(key);
    signals.push({ id, detail });
  };
  for (const { where, text, key } of toolTexts(tool)) {
    const tags = text.match(TAG_CHARS);
    if (tags) {
      // Tag characters mirror ASCII at U+E0000: show what they spell.
      const spelled = tags.map((c) => String.fromCodePoint(c.codePointAt(0) - 0xE0000)).join('').replace(/[^\x20-\x7e]/g, '?');
      add('hidden_characters', `${where}: ${tags.length} Unicode tag characters (invisible) spelling "${clip(spelled)}"`);
    }
    for (const [pattern, what] of [[ZERO_WIDTH, 'zero-width'], [BIDI, 'bidirectional control'], [OTHER_FORMAT, 'invisible format']]) {
      const found = text.match(pattern);
      if (found) add('hidden_characters', `${where}: ${found.length} ${what} character${found.length === 1 ? '' : 's'} (${[...new Set(found.map(codePoint))].slice(0, 5).join(', ')})`);
    }
    if (key) continue; // property names: only hidden characters
    const tag = INSTRUCTION_TAG.exec(text);
    if (tag) add('instruction_block', `${where}: "${clip(tag[0])}" (a tag addressed to the model, not a description of the tool)`);
    for (const phrase of INSTRUCTION_PHRASES) {
      const hit = phrase.exec(text);
      if (hit) add('instruction_block', `${where}: "${clip(hit[0])}" (tells the model what to do or to keep from the user)`);
    }
    for (const pattern of SECRET_PATTERNS) {
      const hit = pattern.exec(text);
      if (hit) add('requests_secrets', `${where}: "${clip(hit[0].trim())}" (files or secrets a tool has no need to be given)`);
    }
    for (const run of text.match(BASE64_RUN) ?? []) {
      if (/[a-z]/.test(run) && /[A-Z]/.test(run) && /[0-9]/.test(run)) add('long_payload', `${where}: a ${run.length}-character base64 run ("${clip(run, 24)}")`);
    }
    for (const url of text.match(URL_RUN) ?? []) {
      const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
      if (/^data:/i.test(url)) add('long_payload', `${where}: a data: URL (${url.length} characters)`);
      else if (url.length > MAX_URL_CHARS || query.length > MAX_URL_QUERY_CHARS) add('long_payload', `${where}: a ${url.length}-character URL ("${clip(url, 60)}")`);
    }
    const blank = /[\s\u3164\u2800]{200,}/u.exec(text);
    if (blank) add('long_description', `${where}: a run of ${blank[0].length} blank characters (pushes what follows out of a reviewer's view)`);
    if (where === 'description' && text.length > MAX_DESCRIPTION_CHARS) {
      add('long_description', `description: ${text.length} characters (more than ${MAX_DESCRIPTION_CHARS}); room for instructions a person will not read`);
    }
    if (where === 'name') continue;
    for (const match of text.matchAll(TOOL_MENTION)) {
      const name = match[1] ?? match[2];
      if (own.has(name)) continue;
      if (others.has(name)) {
        add('shadowing', `${where}: names "${clip(name)}", a tool of server "${others.get(name)}" (one server's text steering the use of another's tools)`);
      } else if (looksLikeIdentifier(name) && (match[2] !== undefined || /\b(?:tool|call|use|invoke)\b/i.test(text.slice(Math.max(0, match.index - 30), match.index + match[0].length + 30)))) {
        add('mentions_other_tools', `${where}: names "${clip(name)}", which is not a tool of this server`);
      }
    }
    const server = SERVER_MENTION.exec(text);
    if (server) add('mentions_other_tools', `${where}: "${clip(server[0])}" (speaks of other servers)`);
  }
  return signals;
}

/** The poisoning signal ids, for UIs and tests. */
export const POISONING_SIGNALS = Object.freeze(['hidden_characters', 'instruction_block', 'requests_secrets', 'long_payload', 'long_description', 'mentions_other_tools', 'shadowing']);

/**
 * Poisoning findings for one server's tools, or several servers' (shadowing:
 * a name another server also lists, or a text that names another server's tool).
 * @param {object[] | Record<string, object[]>} input one server's tools, or server name -> tools
 * @returns {{server?: string, tool: string, signals: {id: string, detail: string}[]}[]} flagged tools only
 */
export function findPoisoning(input) {
  const servers = Array.isArray(input) ? { '': input } : input;
  const findings = [];
  const owners = new Map(); // tool name -> servers listing it
  const folded = new Map(); // name with case, Unicode form and separators ignored -> [{server, name}]
  for (const [server, tools] of Object.entries(servers)) {
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      if (!owners.has(tool.name)) owners.set(tool.name, []);
      if (!owners.get(tool.name).includes(server)) owners.get(tool.name).push(server);
      const key = foldToolName(tool.name);
      if (!folded.has(key)) folded.set(key, []);
      folded.get(key).push({ server, name: tool.name });
    }
  }
  for (const [server, tools] of Object.entries(servers)) {
    const siblings = tools.filter((t) => isObject(t) && typeof t.name === 'string').map((t) => t.name);
    const others = new Map();
    for (const [name, list] of owners) {
      const elsewhere = list.filter((s) => s !== server);
      if (elsewhere.length > 0 && !siblings.includes(name)) others.set(name, elsewhere[0]);
    }
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      const signals = poisoningSignals(tool, { siblings, others });
      const elsewhere = owners.get(tool.name).filter((s) => s !== server);
      if (elsewhere.length > 0) {
        signals.push({ id: 'shadowing', detail: `name: server${elsewhere.length === 1 ? '' : 's'} ${elsewhere.map((s) => `"${s}"`).join(', ')} also list${elsewhere.length === 1 ? 's' : ''} a tool "${tool.name}" (which one runs depends on the client)` });
      }
      // Look-alikes: send_email and Send-Email on two servers read the same to a model.
      const alike = folded.get(foldToolName(tool.name)).filter((other) => other.server !== server && other.name !== tool.name);
      if (alike.length > 0) {
        signals.push({ id: 'shadowing', detail: `name: looks like "${alike[0].name}" of server "${alike[0].server}" (the same once case and separators are ignored)` });
      }
      if (signals.length > 0) findings.push({ ...(Array.isArray(input) ? {} : { server }), tool: tool.name, signals });
    }
  }
  return findings;
}

/**
 * Adds poisoning signals to a scan's classifications (lib/scan.js's
 * scanTools().tools, in the order of `tools`): each flagged tool gets the
 * signals, `flagged: true` and risk "critical". Returns the classifications.
 */
export function flagPoisoned(classifications, tools) {
  const siblings = tools.filter((t) => isObject(t) && typeof t.name === 'string').map((t) => t.name);
  tools.forEach((tool, i) => {
    const signals = poisoningSignals(tool, { siblings });
    const classification = classifications[i];
    if (signals.length === 0 || !classification) return;
    classification.signals.push(...signals);
    classification.risk = 'critical';
    classification.flagged = true;
  });
  return classifications;
}
