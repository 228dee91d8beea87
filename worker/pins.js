// Tool pins: what a reviewed tool looked like, and the check that a server
// still shows it so. Runtime-neutral (Node, workerd, browsers): no I/O here.
//
// A tool's definition is the part the model reads and the server is judged by:
// name, title, description, inputSchema, outputSchema and annotations. Its pin
// is the SHA-256 of the definition's RFC 8785 canonical JSON, kept with the
// definition itself so that a change can be shown field by field.
//
// Pins file (written by `toolgate pin`, read by serve / stdio / Workers):
//   {"toolgate_pins": 1,
//    "servers": {"<server>": {"tools": {"<tool>": {"sha256": "<hex>", "definition": {...}}}}}}
//
// Enforcement (PinMonitor, held by the Gate): toolgate learns the definitions
// every relayed tools/list answer shows (per server and MCP session), forgets
// them when the server announces notifications/tools/list_changed, and a call
// is let through only when the last definition seen for that tool in that
// session is its pin. For a tool not seen yet (no tools/list relayed in this
// session, or none since list_changed) toolgate asks the server for its tools
// itself, in the same session, before deciding (the transports pass
// refreshTools to the Gate); if that fails, the call is denied: toolgate
// cannot know what the server now calls that tool, so it fails closed. Checking a call is a Map lookup and a cached verdict; the
// canonical form is computed only when a list is relayed.
import { canonicalJson, sha256Hex } from './audit.js';

export const PINS_VERSION = 1;
/** The fields of a tool's definition that are pinned, in the order they are shown. */
export const PINNED_FIELDS = Object.freeze(['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations']);
/** The denial code of a call to a tool whose definition is not its pin. */
export const TOOL_CHANGED = 'tool_changed';

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);
const SHA256_HEX = /^[0-9a-f]{64}$/;
// Sessions whose seen definitions are kept at once (per Gate); the oldest are
// forgotten first, and a forgotten session's calls are denied until it lists again.
const MAX_SESSIONS = 10_000;

/** The pinned part of a tool object from tools/list (absent fields left out). */
export function toolDefinition(tool) {
  const definition = {};
  for (const field of PINNED_FIELDS) if (isObject(tool) && tool[field] !== undefined) definition[field] = tool[field];
  return definition;
}

/** Canonical JSON of a definition and of each of its fields; null when it cannot be represented (too deep, not JSON). */
export function canonicalDefinition(definition) {
  try {
    const fields = {};
    for (const field of PINNED_FIELDS) fields[field] = definition[field] === undefined ? undefined : canonicalJson(definition[field]);
    return { canonical: canonicalJson(definition), fields };
  } catch {
    return null;
  }
}

/** The SHA-256 (hex) of a tool's pinned definition. */
export async function pinHash(tool, hashHex = sha256Hex) {
  return hashHex(canonicalJson(toolDefinition(tool)));
}

/** The fields (of PINNED_FIELDS) whose canonical JSON differs between two canonicalDefinition() results. */
export function changedFields(before, after) {
  if (!before || !after) return [...PINNED_FIELDS];
  return PINNED_FIELDS.filter((field) => before.fields[field] !== after.fields[field]);
}

/** Thrown for a pins file that cannot be used; the message says where and why. */
export class PinsError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PinsError';
  }
}

/**
 * Builds a pins document from tools/list answers.
 * @param {Record<string, object[]>} serverTools server name -> its tools (tools/list's `tools`)
 */
export async function makePins(serverTools, hashHex = sha256Hex) {
  const servers = {};
  for (const [server, tools] of Object.entries(serverTools)) {
    const entries = {};
    for (const tool of [...tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (!isObject(tool) || typeof tool.name !== 'string') throw new PinsError(`server "${server}": a listed tool has no string "name"`);
      if (Object.hasOwn(entries, tool.name)) throw new PinsError(`server "${server}" lists tool "${tool.name}" twice; a pin must name one definition`);
      const definition = toolDefinition(tool);
      entries[tool.name] = { sha256: await hashHex(canonicalJson(definition)), definition };
    }
    servers[server] = { tools: entries };
  }
  return { toolgate_pins: PINS_VERSION, servers };
}

/**
 * Reads a pins document (parsed JSON or its text) and checks every pin: the
 * hash must be the definition's, the key its name. Returns
 * Map(server -> ServerPins), ready for the Gate.
 * @param {string | object} source
 * @param {{source?: string, sha256Hex?: (text: string) => string | Promise<string>, trustOnFirstUse?: boolean}} [options]
 */
export async function loadPins(source, { source: where = 'pins', sha256Hex: hashHex = sha256Hex, trustOnFirstUse = false } = {}) {
  let document = source;
  if (typeof source === 'string') {
    try {
      document = JSON.parse(source);
    } catch (error) {
      throw new PinsError(`${where} is not JSON: ${error.message}`);
    }
  }
  // The version may be left out (a file written by hand); another version is refused.
  if (!isObject(document) || (document.toolgate_pins !== undefined && document.toolgate_pins !== PINS_VERSION) || !isObject(document.servers)) {
    throw new PinsError(`${where} is not a toolgate pins file: it needs {"toolgate_pins": ${PINS_VERSION}, "servers": {...}} (write one with toolgate pin)`);
  }
  const servers = new Map();
  for (const [server, entry] of Object.entries(document.servers)) {
    if (!isObject(entry) || !isObject(entry.tools)) throw new PinsError(`${where}: server "${server}" needs "tools": {...}`);
    const tools = new Map();
    for (const [name, pin] of Object.entries(entry.tools)) {
      const at = `${where}: server "${server}", tool "${name}"`;
      if (!isObject(pin) || typeof pin.sha256 !== 'string' || !SHA256_HEX.test(pin.sha256) || !isObject(pin.definition)) {
        throw new PinsError(`${at}: needs "sha256" (64 lower-case hex digits) and "definition" (an object)`);
      }
      if (pin.definition.name !== name) throw new PinsError(`${at}: the definition's name is ${JSON.stringify(pin.definition.name)}, not the key it is pinned under`);
      const extra = Object.keys(pin.definition).filter((field) => !PINNED_FIELDS.includes(field));
      if (extra.length > 0) throw new PinsError(`${at}: the definition has fields that are not pinned (${extra.join(', ')}); only ${PINNED_FIELDS.join(', ')}`);
      const canonical = canonicalDefinition(pin.definition);
      if (!canonical) throw new PinsError(`${at}: the definition cannot be written as RFC 8785 JSON`);
      const actual = await hashHex(canonical.canonical);
      if (actual !== pin.sha256) throw new PinsError(`${at}: "sha256" is not the hash of the definition (it is ${actual}); the file was edited by hand: pin again`);
      tools.set(name, { sha256: pin.sha256, definition: pin.definition, ...canonical });
    }
    servers.set(server, new ServerPins(tools, { trustOnFirstUse }));
  }
  return servers;
}

/** One server's pins, as the Gate uses them. trustOnFirstUse: a tool without a pin is pinned as first seen. */
export class ServerPins {
  constructor(tools = new Map(), { trustOnFirstUse = false } = {}) {
    this.tools = tools;
    this.trustOnFirstUse = trustOnFirstUse;
  }
}

/**
 * Which pins a server of the proxy is held to: its own entry in the file, or
 * (the proxy serving one server and the file pinning one) the file's only
 * entry, whatever name it was written under. A server the file does not name
 * gets an empty set: every tool of it is unpinned, so blocked (fail closed),
 * unless trust on first use is on.
 */
export function pinsForServer(loaded, server, { singleServer = false, trustOnFirstUse = false } = {}) {
  if (!loaded) return trustOnFirstUse ? new ServerPins(new Map(), { trustOnFirstUse }) : undefined;
  let pins = loaded.get(server);
  if (!pins && singleServer && loaded.size === 1) pins = [...loaded.values()][0];
  return pins ?? new ServerPins(new Map(), { trustOnFirstUse });
}

/**
 * What toolgate has seen of tool definitions, and the verdicts against pins.
 * One per Gate; state is per server and MCP session.
 */
export class PinMonitor {
  // "server\nsession" -> Map(tool -> {canonical, fields, verdict: WeakMap(ServerPins -> problem | null)})
  #sessions = new Map();
  // server -> Map(tool -> pin): trust on first use, held for this process's life
  #firstSeen = new Map();
  // "server\nsession" -> list_changed notifications seen (see learn())
  #epochs = new Map();
  // "server\nsession" -> the epoch at which toolgate last listed the tools itself
  #listedAt = new Map();

  #key(server, session) {
    return `${server}\n${session ?? ''}`;
  }

  #pinOf(server, pins, tool) {
    return pins.tools.get(tool) ?? (pins.trustOnFirstUse ? this.#firstSeen.get(server)?.get(tool) : undefined);
  }

  /**
   * A tools/list answer (or one page of it) on its way to the client: learns
   * each definition, returns the tools that may be shown (those whose
   * definition is their pin).
   */
  learn(server, session, pins, tools, epoch) {
    const key = this.#key(server, session);
    // An answer to a request sent before the server's latest list_changed
    // arrived may show the tools as they were before the change (over HTTP it
    // can come after the notification, on another stream): it is filtered,
    // but not remembered as what the session now sees.
    const current = epoch === undefined || epoch === (this.#epochs.get(key) ?? 0);
    let seen = current ? this.#sessions.get(key) : new Map();
    if (!seen) {
      seen = new Map();
      this.#sessions.set(key, seen);
      if (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value);
    }

    const shown = [];
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool.name !== 'string') continue;
      const canonical = canonicalDefinition(toolDefinition(tool));
      if (canonical && pins.trustOnFirstUse && !pins.tools.has(tool.name)) {
        let first = this.#firstSeen.get(server);
        if (!first) this.#firstSeen.set(server, first = new Map());
        if (!first.has(tool.name)) first.set(tool.name, { definition: toolDefinition(tool), ...canonical });
      }
      // Unrepresentable definitions are remembered as such: their calls are denied.
      const entry = { canonical, verdict: new WeakMap() };
      seen.set(tool.name, entry);
      if (this.#verdict(server, pins, tool.name, entry) === null) shown.push(tool);
    }
    return shown;
  }

  /** The server said its tools changed: what this session saw no longer counts. */
  listChanged(server, session) {
    const key = this.#key(server, session);
    this.#sessions.delete(key);
    const next = (this.#epochs.get(key) ?? 0) + 1;
    this.#epochs.delete(key); // re-inserted last: the map keeps the most recent sessions
    this.#epochs.set(key, next);
    if (this.#epochs.size > MAX_SESSIONS) this.#epochs.delete(this.#epochs.keys().next().value);
  }

  /**
   * How many list_changed this session has had: taken when a tools/list
   * request goes to the server, passed to learn() with its answer.
   */
  epoch(server, session) {
    return this.#epochs.get(this.#key(server, session)) ?? 0;
  }

  /**
   * null when a call to `tool` may go on; else why not (the denial's message).
   * `unseen` (see seen()) is the message for a tool whose current definition
   * toolgate has not seen in this session.
   */
  check(server, session, pins, tool) {
    const entry = this.#sessions.get(this.#key(server, session))?.get(tool);
    if (!entry) {
      return `toolgate has not seen the current definition of tool ${JSON.stringify(tool)} on this server in this session `
        + '(no tools/list answer since the session began or since the server announced that its tools changed), and its tools are pinned; '
        + 'the call was not forwarded. List the tools (tools/list) and call again.';
    }
    return this.#verdict(server, pins, tool, entry);
  }

  /** Whether toolgate has seen a definition of `tool` in this session since the last list_changed. */
  seen(server, session, tool) {
    return this.#sessions.get(this.#key(server, session))?.has(tool) === true;
  }

  /**
   * Whether toolgate should list the tools itself before deciding a call to
   * `tool`: it has not seen the tool, and has not listed them itself since
   * the session's last list_changed. (Calls to a name the server does not
   * list would otherwise cost the server a tools/list each.)
   */
  needsListing(server, session, tool) {
    if (this.seen(server, session, tool)) return false;
    const key = this.#key(server, session);
    return this.#listedAt.get(key) !== (this.#epochs.get(key) ?? 0);
  }

  /** toolgate listed the tools itself at `epoch` (see needsListing). */
  listed(server, session, epoch) {
    const key = this.#key(server, session);
    this.#listedAt.delete(key);
    this.#listedAt.set(key, epoch);
    if (this.#listedAt.size > MAX_SESSIONS) this.#listedAt.delete(this.#listedAt.keys().next().value);
  }

  #verdict(server, pins, tool, entry) {
    if (entry.verdict.has(pins)) return entry.verdict.get(pins);
    const pin = this.#pinOf(server, pins, tool);
    let problem = null;
    if (!entry.canonical) {
      problem = `Tool ${JSON.stringify(tool)}'s definition cannot be checked against a pin (not representable as RFC 8785 JSON); the call was not forwarded.`;
    } else if (!pin) {
      problem = `Tool ${JSON.stringify(tool)} has no pin: its definition was never reviewed, so toolgate does not forward calls to it. Review it and pin it (toolgate pin).`;
    } else if (pin.canonical !== entry.canonical.canonical) {
      problem = `Tool ${JSON.stringify(tool)} changed since it was pinned (fields: ${changedFields(pin, entry.canonical).join(', ')}); the call was not forwarded. `
        + 'Review the change (toolgate pin --diff) and pin it again if it is wanted.';
    }
    entry.verdict.set(pins, problem);
    return problem;
  }
}

// Pages of tools/list toolgate follows when it lists a server's tools itself.
const MAX_REFRESH_PAGES = 100;

/**
 * Lists a server's tools (every page) through `send(message) → Promise<response>`,
 * the transport's way to ask the server in the client's session. Each request
 * has an id of toolgate's own, unguessable, so no client request is answered by it.
 * Throws (the caller denies) on an error answer, a malformed one, or too many pages.
 */
export async function listToolsThrough(send) {
  const tools = [];
  let cursor;
  for (let page = 0; page < MAX_REFRESH_PAGES; page += 1) {
    const message = { jsonrpc: '2.0', id: `toolgate-pins-${crypto.randomUUID()}`, method: 'tools/list' };
    if (cursor !== undefined) message.params = { cursor };
    const answer = await send(message);
    if (!isObject(answer) || answer.id !== message.id) throw new Error('the server did not answer toolgate\'s tools/list');
    if ('error' in answer) throw new Error(`the server answered toolgate's tools/list with an error: ${String(answer.error?.message ?? '').slice(0, 200)}`);
    if (!isObject(answer.result) || !Array.isArray(answer.result.tools)) throw new Error('the server\'s tools/list answer has no "tools" array');
    tools.push(...answer.result.tools);
    cursor = answer.result.nextCursor;
    if (cursor === undefined || cursor === null) return tools;
    if (typeof cursor !== 'string') throw new Error('the server\'s tools/list answer has a "nextCursor" that is not a string');
  }
  throw new Error(`the server's tools/list did not end within ${MAX_REFRESH_PAGES} pages`);
}

/** The JSON-RPC messages of an event stream's text (data: lines, joined per event). */
export function eventStreamMessages(text) {
  const messages = [];
  for (const event of text.split(/\r\n\r\n|\n\n|\r\r/)) {
    const data = event.split(/\r\n|\n|\r/).filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
    if (data.length === 0) continue;
    try {
      messages.push(JSON.parse(data.join('\n')));
    } catch {
      // not JSON: not an answer to toolgate
    }
  }
  return messages;
}
