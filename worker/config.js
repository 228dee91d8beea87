// One loader of the proxy's configuration for every host: `toolgate serve`
// (files), `toolgate stdio` (files) and the Workers entry (bindings).
//
// It reads the policies, the grants, the pins and a servers document (`--config`
// on Node, the SERVERS binding on Workers) through an injected reader, so that
// it holds no host's API: a reader on Node reads files, one on Workers reads
// env bindings. Each policy is compiled once (the compile result carries the
// diagnostics: no separate check pass), every problem of every input is
// collected, and a configuration with any problem throws one
// ProxyConfigError listing them all: nothing is half-loaded. What it returns
// names every file it read, so the Node host watches each of them for reload.
import { Grants, GrantsError, sha256Bytes, toHex } from './grants.js';
import { checkOAuthConfig, OAuthConfigError } from './oauth.js';
import { loadPins, PinsError, pinsForServer } from './pins.js';

/** A configuration that cannot mean what it says (a flag, a file, a binding). */
export class ConfigError extends Error {
  name = 'ConfigError';
}

/**
 * The configuration does not load. `diagnostics` lists every problem found, of
 * every input: {file, line?, column?, pointer?, code, severity: 'error', message}.
 * `file` is what was read (a path on Node, a binding's name on Workers); line
 * and column are 1-based and present where a JSON Pointer could be placed in
 * the text. The message has one line per problem, grouped by policy.
 */
export class ProxyConfigError extends ConfigError {
  name = 'ProxyConfigError';

  constructor(diagnostics) {
    super(formatDiagnostics(diagnostics).join('\n'));
    this.diagnostics = diagnostics;
  }
}

// Codes of the problems found outside a policy (a policy's own are the core's:
// unknown_field, invalid_value, ...).
export const CONFIG_CODES = Object.freeze({
  unreadable: 'unreadable', // the input cannot be read (no such file, no binding)
  notJson: 'not_json',
  config: 'invalid_config', // the servers document, a header, a flag given with it
  grants: 'invalid_grants',
  pins: 'invalid_pins',
  oauth: 'invalid_oauth',
});

/**
 * The lines that say what is wrong: a policy's problems under one heading
 * ("FILE is not a valid policy:", then "  FILE:LINE:COLUMN: MESSAGE (POINTER)"),
 * another placed problem as "FILE:LINE:COLUMN: POINTER: MESSAGE", the rest as
 * their sentence (which names the input).
 */
export function formatDiagnostics(diagnostics) {
  const lines = [];
  let heading = null;
  for (const d of diagnostics) {
    if (d.policy) {
      if (heading !== d.file) lines.push(`${d.file} is not a valid policy:`);
      heading = d.file;
      lines.push(`  ${d.file}:${d.line}:${d.column}: ${d.message} (${d.pointer})`);
      continue;
    }
    heading = null;
    if (d.pointer !== undefined) {
      const at = d.line ? `${d.file}:${d.line}:${d.column}` : d.file;
      lines.push(`${at}: ${d.pointer || '/'}: ${d.message}`);
    } else {
      lines.push(d.message);
    }
  }
  return lines;
}

/**
 * Compiles one policy, once. Returns {policy} or {diagnostics} (its errors,
 * with `file`), never throws for a bad policy.
 */
export function compilePolicy(toolgate, text, file) {
  try {
    return { policy: toolgate.compile(text, { source: file }) };
  } catch (error) {
    if (!Array.isArray(error?.diagnostics)) throw error;
    return {
      diagnostics: error.diagnostics.filter((d) => d.severity === 'error')
        .map((d) => ({ file, line: d.line, column: d.column, pointer: d.pointer, code: d.code, severity: 'error', message: d.message, policy: true })),
    };
  }
}

/**
 * A reader of the inputs: on Node, files; on Workers, bindings.
 * @typedef {object} ConfigReader
 * @property {(name: string) => Promise<string> | string} read the text of an input; throws
 *   (with `code` 'ENOENT' when there is none) when it cannot
 * @property {(from: string, reference: string) => string} [resolve] the name of an input a
 *   document refers to (a grant's policy file, relative to the grants file). Without it (Workers)
 *   inputs are not files: a string where a policy goes is refused in grants and is the policy's
 *   JSON text in a servers document.
 * @property {(name: string, what: string) => string} [label] how an input is named in messages
 * @property {boolean} [secret] true: messages never quote an input's text (bindings may be secrets)
 * @property {boolean} [files] true: what is read are files, listed in the result for watching
 */

/**
 * Reads and compiles the proxy's configuration.
 * @param {object} sources what to read:
 *   config      name of a servers document: Node's --config file
 *               ({"servers": {...}, "grants": FILE, "oauth": {...}}), or, with
 *               configForm 'servers', Workers' SERVERS binding ({"<name>": {...}})
 *   servers     instead of config: {name: {upstream, policy: NAME, headers, monitor}}
 *   grants      name of the grants document (over the servers document's "grants")
 *   pins        name of a pins file; trustOnFirstUse
 *   monitor     true: every server in monitor mode
 *   header      (value, where) => value: what a configured header value becomes (Node
 *               expands ${VAR}); throws ConfigError for a bad one
 *   oauth       (fromDocument, where) => OAuth settings or undefined: the host's settings
 *               (flags, bindings) over the servers document's "oauth"; checked here with
 *               the document's per-server "oauth" merged in
 *   session     {sessionKey, adminToken, names}: derive the session key (deriveSessionKey),
 *               its problem reported with the others
 * @param {{toolgate: object, reader: ConfigReader, sha256Hex?: (text: string) => string}} host
 * @returns {Promise<{servers: object, grants: Grants | null, grantPolicies: Map, oauth: object | undefined,
 *   files: string[]}>} servers as the handler takes them (each also with `policyFile`), the
 *   checked OAuth settings (`oauthSettings`: as written, before the check), the session key
 *   (with `session`), and the files read
 */
export async function loadProxyConfig(sources, { toolgate, reader, sha256Hex }) {
  const problems = [];
  const files = [];
  const compiled = [];
  const label = (name, what) => reader.label?.(name, what) ?? `the ${what} ${name}`;
  const problem = (file, code, message, pointer, text) => {
    const at = pointer !== undefined && text !== undefined ? locate(toolgate, text, pointer) : null;
    problems.push({ file, ...(at ?? {}), ...(pointer !== undefined ? { pointer } : {}), code, severity: 'error', message });
  };

  // Reads one input; undefined (and a problem) when it cannot be read.
  const read = async (name, what) => {
    if (reader.files) files.push(name);
    try {
      const text = await reader.read(name);
      if (typeof text !== 'string') throw Object.assign(new Error('not set'), { code: 'ENOENT' });
      return text;
    } catch (error) {
      const why = error?.code === 'ENOENT' ? 'no such file' : error?.code === 'EISDIR' ? 'it is a directory' : (reader.secret ? error?.name : error?.message);
      problem(name, CONFIG_CODES.unreadable, `cannot read ${label(name, what)}: ${reader.files ? why : 'it is not set'}`);
      return undefined;
    }
  };
  const parse = (text, name, what) => {
    try {
      return { value: JSON.parse(text) };
    } catch (error) {
      // Not error.message where inputs are secret: V8 quotes the text around the fault.
      problem(name, CONFIG_CODES.notJson, reader.secret ? `${label(name, what)} is not JSON (${error.name})` : `${name} is not JSON: ${error.message}`);
      return null;
    }
  };
  // A file named twice (a server's policy and a grant's) is read and compiled once.
  const byFile = new Map();
  const compile = (text, file) => {
    const result = compilePolicy(toolgate, text, file);
    if (result.policy) compiled.push(result.policy);
    else problems.push(...result.diagnostics);
    return result.policy;
  };
  const policyFile = (path, what) => {
    if (!byFile.has(path)) {
      byFile.set(path, read(path, what).then((text) => (text === undefined ? undefined : { policy: compile(text, path), file: path })));
    }
    return byFile.get(path);
  };
  // A policy named by a document: a file next to it, or inline (an object; on
  // Workers also a string of JSON text when `inlineText`).
  const policyAt = async (source, from, where, { inlineText }) => {
    if (typeof source === 'string' && reader.resolve) return policyFile(reader.resolve(from, source), `policy of ${where}`);
    if (typeof source === 'string' && !inlineText) return { refused: true };
    const text = typeof source === 'string' ? source : JSON.stringify(source);
    const file = reader.resolve ? `${from}: the inline policy of ${where}` : where;
    return { policy: compile(text, file), file };
  };

  // 1. The servers: from a document or given.
  const servers = {};
  let grantsName = sources.grants;
  let documentOauth;
  let documentName;
  const perServerOauth = {};
  const header = (value, where) => {
    try {
      return sources.header ? sources.header(String(value), where) : String(value);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problem(where, CONFIG_CODES.config, error.message);
      return undefined;
    }
  };
  if (sources.config !== undefined) {
    documentName = sources.config;
    const text = await read(sources.config, 'config file');
    const parsed = text === undefined ? null : parse(text, sources.config, 'config file');
    if (parsed) {
      const serversForm = sources.configForm === 'servers';
      const document = serversForm ? { servers: parsed.value } : parsed.value;
      const pointerOf = (name, field) => `${serversForm ? '' : '/servers'}/${escapePointer(name)}${field ? `/${field}` : ''}`;
      const bad = (pointer, message) => problem(sources.config, CONFIG_CODES.config, message, pointer, text);
      if (!isObject(document) || !isObject(document.servers)) {
        bad(serversForm ? '' : '/servers', serversForm ? 'must be a JSON object of servers: {"<name>": {"upstream": URL, "policy": {...}}}'
          : '"servers" must be an object: {"<name>": {"upstream": URL, "policy": FILE}}');
      } else {
        for (const [name, server] of Object.entries(document.servers)) {
          const at = `server "${name}"`;
          if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
            bad(pointerOf(name), `server name ${JSON.stringify(name)} must be letters, digits, _ . -`);
            continue;
          }
          // A key every object has: as a server's name it would replace the
          // servers object's prototype, not name a server.
          if (name in Object.prototype) {
            bad(pointerOf(name), `server name ${JSON.stringify(name)} is reserved`);
            continue;
          }
          if (!isObject(server)) {
            bad(pointerOf(name), `${at} must be an object: {"upstream": URL, "policy": ...}`);
            continue;
          }
          const upstream = httpUrl(server.upstream);
          if (!upstream) bad(pointerOf(name, 'upstream'), `${at} "upstream" must be an http(s) URL${reader.secret ? '' : `, not ${JSON.stringify(server.upstream)}`}`);
          if (server.monitor !== undefined && typeof server.monitor !== 'boolean') bad(pointerOf(name, 'monitor'), `${at} "monitor" must be true or false`);
          if (server.headers !== undefined && !isObject(server.headers)) bad(pointerOf(name, 'headers'), `${at} "headers" must be an object of header values`);
          if (server.oauth !== undefined) perServerOauth[name] = server.oauth;
          let policy;
          let policyFile;
          if (typeof server.policy === 'string' || isObject(server.policy)) {
            const got = await policyAt(server.policy, sources.config, serversForm ? `${sources.config}.${name}.policy` : at, { inlineText: true });
            policy = got?.policy;
            policyFile = got?.file;
          } else {
            bad(pointerOf(name, 'policy'), `${at} needs "policy" (${reader.resolve ? 'a file' : 'a policy object'})`);
          }
          const headers = {};
          for (const [key, value] of Object.entries(isObject(server.headers) ? server.headers : {})) headers[key] = header(value, sources.config);
          servers[name] = { upstream: upstream ?? server.upstream, headers, policy, policyFile, monitor: sources.monitor === true || server.monitor === true };
        }
        if (Object.keys(document.servers).length === 0) bad(serversForm ? '' : '/servers', '"servers" must name at least one server');
        if (!serversForm) {
          if (grantsName === undefined && document.grants !== undefined) {
            if (typeof document.grants === 'string' && reader.resolve) grantsName = reader.resolve(sources.config, document.grants);
            else bad('/grants', '"grants" must be a file name');
          }
          documentOauth = document.oauth;
        }
      }
    }
  } else {
    for (const [name, server] of Object.entries(sources.servers ?? {})) {
      const got = await policyFile(server.policy, 'policy');
      servers[name] = {
        upstream: server.upstream, headers: server.headers ?? {}, monitor: sources.monitor === true || server.monitor === true,
        policy: got?.policy, policyFile: server.policy,
      };
    }
  }
  const serverNames = Object.keys(servers);

  // 2. Tool pins (./pins.js): checked whole, like a policy.
  if (sources.pins !== undefined || sources.trustOnFirstUse) {
    let loaded;
    let ok = true;
    if (sources.pins !== undefined) {
      const text = await read(sources.pins, 'pins file');
      const parsed = text === undefined ? null : parse(text, sources.pins, 'pins file');
      ok = parsed !== null;
      if (ok) {
        try {
          loaded = await loadPins(parsed.value, { source: sources.pins, trustOnFirstUse: sources.trustOnFirstUse ?? false, ...(sha256Hex ? { sha256Hex } : {}) });
        } catch (error) {
          if (!(error instanceof PinsError)) throw error;
          problem(sources.pins, CONFIG_CODES.pins, error.message);
          ok = false;
        }
      }
    }
    if (ok) {
      for (const [name, server] of Object.entries(servers)) {
        server.pins = pinsForServer(loaded, name, { singleServer: serverNames.length === 1, trustOnFirstUse: sources.trustOnFirstUse ?? false });
      }
    }
  }

  // 3. Grants, and their own policies: a grant's policy replaces a server's for
  // that grant, on the server it names ("policies") or the one there is ("policy").
  let grants = null;
  const grantPolicies = new Map();
  if (grantsName !== undefined) {
    const text = await read(grantsName, 'grants file');
    const parsed = text === undefined ? null : parse(text, grantsName, 'grants file');
    if (parsed) {
      const grantsProblems = (error) => {
        if (!(error instanceof GrantsError)) throw error;
        for (const p of error.problems ?? []) problem(grantsName, CONFIG_CODES.grants, p.message, p.pointer, text);
        if (!error.problems) problem(grantsName, CONFIG_CODES.grants, error.message);
      };
      try {
        grants = new Grants(parsed.value, grantsName);
      } catch (error) {
        grantsProblems(error);
      }
      let sourcesOf = new Map();
      if (grants && serverNames.length > 0) {
        try {
          sourcesOf = grants.policySources(serverNames);
        } catch (error) {
          grantsProblems(error);
        }
      }
      for (const [id, perServer] of sourcesOf) {
        const policies = new Map();
        for (const [server, source] of perServer) {
          const got = await policyAt(source, grantsName, `grant "${id}"${reader.resolve ? '' : ` for server "${server}"`}`, { inlineText: false });
          if (got?.refused) {
            problem(grantsName, CONFIG_CODES.grants, `${grantsName}: grant "${id}" names the policy file ${JSON.stringify(source)}; on Workers a grant's policy is given inline, as JSON`);
          } else if (got?.policy) {
            policies.set(server, got.policy);
          }
        }
        grantPolicies.set(id, policies);
      }
    }
  }

  // 4. OAuth: the host's settings over the document's, each server's own merged in.
  let oauth;
  let settings;
  try {
    settings = sources.oauth ? sources.oauth(documentOauth, documentName ?? '--config') : documentOauth;
    if (Object.keys(perServerOauth).length > 0) {
      if (!settings) throw new ConfigError(`${documentName}: a server has "oauth" but no issuers are configured (a top-level "oauth" with "issuers")`);
      settings = { ...settings, servers: { ...settings.servers, ...perServerOauth } };
    }
    if (settings !== undefined) oauth = checkOAuthConfig(settings, serverNames);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof OAuthConfigError)) throw error;
    problem(documentName ?? 'oauth', CONFIG_CODES.oauth, error.message);
  }

  // 5. The session key, when the host asks for it (./sessions.js).
  let sessionKey;
  if (sources.session !== undefined) {
    try {
      sessionKey = await deriveSessionKey(sources.session, sources.session.names);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problem(sources.session.names?.sessionKey ?? 'SESSION_KEY', CONFIG_CODES.config, error.message);
    }
  }

  if (problems.length > 0) {
    // Nothing of a configuration that does not load is kept.
    for (const policy of compiled) policy.dispose?.();
    // The files it tried, so that a host watching them sees the one that fixes it.
    throw Object.assign(new ProxyConfigError(problems), { files: [...new Set(files)] });
  }
  return { servers, grants, grantPolicies, oauth, oauthSettings: settings, sessionKey, files: [...new Set(files)] };
}

/**
 * The secret that binds MCP session ids to grants (./sessions.js), the same on
 * every host: the key given, or one derived from the admin token, so that
 * instances sharing either accept each other's ids. Never from anything an
 * agent may see. `names` says what the host calls the two (flags, variables,
 * bindings) in its messages.
 * @returns {Promise<string>}
 */
export async function deriveSessionKey({ sessionKey, adminToken }, names = { sessionKey: 'SESSION_KEY', adminToken: 'ADMIN_TOKEN' }) {
  if (sessionKey !== undefined && sessionKey !== null && sessionKey !== '') {
    if (String(sessionKey).length < 16) throw new ConfigError(`${names.sessionKey} must be at least 16 characters`);
    return String(sessionKey);
  }
  if (!adminToken) {
    throw new ConfigError(`set the ${names.sessionKey} secret (or ${names.adminToken}): MCP session ids are bound to grants with a secret key`);
  }
  return toHex(await sha256Bytes(`toolgate session key\nadmin\n${adminToken}`));
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

function httpUrl(value) {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch {
    // not a URL
  }
  return undefined;
}

const escapePointer = (name) => name.replaceAll('~', '~0').replaceAll('/', '~1');

// Where a JSON Pointer stands in a document's text, by the core's own locator.
function locate(toolgate, text, pointer) {
  try {
    return toolgate.locate?.(text, pointer) ?? null;
  } catch {
    return null;
  }
}
