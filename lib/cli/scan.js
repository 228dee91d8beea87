// `toolgate scan`: connect to an MCP server as a client (the official SDK), list its
// tools, classify them with lib/scan.js and print a starter policy.
//
//   toolgate scan <url> [--header "Name: value"]... [--bearer TOKEN] [--json] [--out FILE]
//   toolgate scan [options] -- <command> [args...]
//
// Everything the server sends (names, descriptions, its name and version) is data from
// a program we do not trust: the text output makes it terminal-safe, the JSON output
// keeps it verbatim. Failures exit 1 with what failed, where, and why.
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, ResultSchema } from '@modelcontextprotocol/sdk/types.js';

import { loadToolgate } from '../../wasm/index.js';
import { formatScan, ScanError, scanTools, starterPolicy, terminalSafe, toolsOf } from '../scan.js';
import { flagPoisoned } from '../poisoning.js';
import { UsageError, commandLine } from './args.js';

export const USAGE = `Usage:
  toolgate scan URL [options]
  toolgate scan [options] -- COMMAND [ARGS...]
  toolgate scan --file TOOLS_LIST.json [options]

Connects to an MCP server (Streamable HTTP at URL, falling back to the older
HTTP+SSE transport; or a stdio server started as COMMAND ARGS...), lists its
tools, classifies each as read / write / execute / destructive with a risk level
and the signals behind it, and prints a starter policy: default deny, read tools
allowed, write 30/minute and execute 10/minute per grant, destructive hidden, and
every call to a tool that handles credentials waiting for a human's approval.

Options:
  --header "Name: value"  Send an HTTP header (repeatable). HTTP only.
  --bearer TOKEN          Send "Authorization: Bearer TOKEN". HTTP only.
  --json                  Print one JSON object: {"server": {"name", "version"},
                          "tools": [{"name", "category", "risk", "signals"}], "policy"}.
  --out FILE              Write the starter policy to FILE (checked by the core
                          first) instead of printing it. Refuses to replace an
                          existing FILE unless --force is given.
  --force                 With --out: replace FILE if it exists.
  --details               Print each signal's detail under its tool.
  --file FILE             Classify a saved tools/list answer (a result {"tools": [...]},
                          a JSON-RPC response, or an array of tools) offline.
  --hide-flagged          Hide, in the starter policy, every tool flagged for signs of
                          instructions to the model (poisoning signals: hidden
                          characters, instruction blocks, requests for secrets,
                          long payloads, overlong descriptions, other tools named).
  --timeout MS            Give up when connecting and listing take longer than MS
                          milliseconds (default 30000).
  -h, --help              Print this help.

A stdio server inherits this environment and working directory; its standard
error is shown only when the scan fails. Exits 0 on success, 1 when the server
cannot be scanned, 2 for a usage error.

Examples:
  toolgate scan https://mcp.example.com/mcp --bearer "$TOKEN" --out policy.json
  toolgate scan -- npx -y @modelcontextprotocol/server-filesystem /tmp
`;

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1; // setTimeout's limit
const MAX_PAGES = 1000; // a server that never stops paginating is broken, not big
const STDERR_TAIL_BYTES = 4096; // of a stdio server's standard error, for failure messages
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const CLIENT_INFO = { name: 'toolgate-scan', version };

/** A scan that could not be done: the message says what failed, where and why. */
export class ScanFailure extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'ScanFailure';
  }
}


// HTTP header names are RFC 9110 tokens.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHeader(text) {
  const colon = text.indexOf(':');
  const name = colon > 0 ? text.slice(0, colon).trim() : '';
  if (!HEADER_NAME.test(name)) {
    throw new UsageError(`--header expects "Name: value", got ${JSON.stringify(text)}`);
  }
  const value = text.slice(colon + 1).trim();
  if (/[\r\n\0]/.test(value)) throw new UsageError(`--header ${name}: the value must be on one line`);
  return [name, value];
}

/** Parses the subcommand's arguments into { help } or a scan request. Throws UsageError. */
export function parseScanArgs(args) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      tokens: true,
      options: {
        header: { type: 'string', multiple: true, default: [] },
        bearer: { type: 'string' },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        force: { type: 'boolean', default: false },
        details: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        file: { type: 'string' },
        'hide-flagged': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    // parseArgs' own advice for unknown options ("place it after --") means something else here.
    const unknown = error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && /option '([^']*)'/.exec(error.message);
    throw new UsageError(unknown ? `unknown option ${unknown[1]}` : error.message);
  }
  const { values, positionals, tokens } = parsed;
  if (values.help) return { help: true };

  // Positionals before "--" name a URL; everything after it is the stdio command line.
  const terminator = tokens.find((t) => t.kind === 'option-terminator');
  const before = tokens.filter((t) => t.kind === 'positional' && (!terminator || t.index < terminator.index)).map((t) => t.value);
  const commandLine = terminator ? positionals.slice(before.length) : [];

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    timeoutMs = /^\d+$/.test(values.timeout) ? Number(values.timeout) : NaN;
    if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new UsageError(`--timeout expects milliseconds (a whole number from 1 to ${MAX_TIMEOUT_MS}), got ${JSON.stringify(values.timeout)}`);
    }
  }
  if (values.force && values.out === undefined) throw new UsageError('--force only makes sense with --out FILE');
  if (values.out === '') throw new UsageError('--out expects a file name');
  const output = { json: values.json, out: values.out, force: values.force, details: values.details, ...(values['hide-flagged'] ? { hideFlagged: true } : {}) };

  if (values.file !== undefined) {
    // A saved tools/list answer, classified offline: no server to reach.
    if (values.file === '') throw new UsageError('--file expects a file name');
    if (terminator || before.length > 0) throw new UsageError('give either --file or a server (URL, or -- and a command), not both');
    if (values.header.length > 0 || values.bearer !== undefined || values.timeout !== undefined) {
      throw new UsageError('--header, --bearer and --timeout are for live servers, not --file');
    }
    return { target: { kind: 'file', path: values.file }, timeoutMs, output };
  }

  if (terminator) {
    if (before.length > 0) {
      throw new UsageError(`give either a URL or a command after --, not both (got ${JSON.stringify(before[0])} and a command)`);
    }
    if (commandLine.length === 0 || commandLine[0] === '') throw new UsageError('no command after --');
    if (values.header.length > 0 || values.bearer !== undefined) {
      throw new UsageError('--header and --bearer are for HTTP servers; a stdio server takes its credentials from the environment');
    }
    return { target: { kind: 'stdio', command: commandLine[0], args: commandLine.slice(1) }, timeoutMs, output };
  }

  if (before.length === 0) throw new UsageError('which server? Give its URL, or -- and the command that starts it (stdio)');
  if (before.length > 1) {
    throw new UsageError(`scan takes one URL, got ${before.length} arguments (to run a stdio server, put its command after --)`);
  }
  let url;
  try {
    url = new URL(before[0]);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`${JSON.stringify(before[0])} is not an http:// or https:// URL`
      + `${before[0].includes('://') ? '' : `; to scan a stdio server, put its command after --: toolgate scan -- ${before[0]} ...`}`);
  }
  // fetch refuses URLs with credentials, and they would end up in messages.
  if (url.username || url.password) throw new UsageError('put credentials in --bearer or --header, not in the URL');

  const headers = {};
  const byLowerName = new Map();
  for (const text of values.header) {
    const [name, value] = parseHeader(text);
    // A repeated header replaces the earlier one (case-insensitively), like an edited command line.
    const previous = byLowerName.get(name.toLowerCase());
    if (previous !== undefined) delete headers[previous];
    byLowerName.set(name.toLowerCase(), name);
    headers[name] = value;
  }
  if (values.bearer !== undefined) {
    if (values.bearer === '' || /[\s\0]/.test(values.bearer)) throw new UsageError('--bearer expects a token (no spaces)');
    if (byLowerName.has('authorization')) throw new UsageError('give --bearer or an Authorization --header, not both');
    headers.Authorization = `Bearer ${values.bearer}`;
  }
  return { target: { kind: 'http', url, headers }, timeoutMs, output };
}

// How a stdio command line is shown in messages: quoted where a shell would need it.
function showCommand(command, args) {
  return [command, ...args].map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`)).join(' ');
}

function describeTarget(target) {
  if (target.kind === 'file') return target.path;
  return target.kind === 'http' ? target.url.href : showCommand(target.command, target.args);
}

function seconds(ms) {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

// The network-level reason inside fetch's "fetch failed" TypeError (also used by approvals.js).
const NETWORK_REASONS = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_SOCKET: 'the connection closed unexpectedly',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

export function networkCause(error) {
  for (let cause = error, depth = 0; cause && depth < 5; cause = cause.cause, depth += 1) {
    const code = cause.code;
    if (typeof code === 'string' && (NETWORK_REASONS[code] || /^(ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO)/.test(code))) {
      const reason = NETWORK_REASONS[code] ?? (code.startsWith('ERR_SSL') ? 'TLS handshake failed (is it an http:// server?)' : firstLine(cause.message, 160));
      return `${reason} (${code})`;
    }
    if (Array.isArray(cause.errors) && cause.errors.length > 0) return networkCause(cause.errors[0]); // tried IPv6 and IPv4
  }
  // Undici's "fetch failed" wraps the reason (e.g. "bad port" for ports fetch refuses).
  if (error instanceof TypeError && error.message === 'fetch failed' && error.cause?.message) return firstLine(error.cause.message, 160);
  return null;
}

function httpStatusOf(error) {
  // StreamableHTTPError and SseError carry the HTTP status as `code` (-1 when none).
  const name = error?.constructor?.name;
  if ((name === 'StreamableHTTPError' || name === 'SseError') && Number.isInteger(error.code) && error.code >= 100) return error.code;
  return null;
}

// The first line of an error message, cut, and terminal-safe: such messages quote what the
// server sent (an HTTP body, a JSON-RPC error, a line of its output).
function firstLine(text, max = 300) {
  const line = String(text).split('\n').find((l) => l.trim() !== '') ?? '';
  return terminalSafe(line.length > max ? `${line.slice(0, max - 1)}…` : line);
}

// Explains a failure of an HTTP connection attempt; `sentAuth` says whether we sent credentials.
function explainHttpFailure(error, { sentAuth }) {
  const status = httpStatusOf(error);
  if (status === 401 || error?.constructor?.name === 'UnauthorizedError') {
    return sentAuth
      ? 'the server refused the credentials (HTTP 401 Unauthorized); check the token given with --bearer or --header'
      : 'the server requires authentication (HTTP 401 Unauthorized); pass a token with --bearer TOKEN, or a header with --header "Name: value"';
  }
  if (status === 403) {
    return `access forbidden (HTTP 403)${sentAuth ? '; the credentials given are not allowed to use this server' : '; it may need credentials: --bearer TOKEN or --header "Name: value"'}`;
  }
  if (status === 404) return 'HTTP 404 Not Found: no MCP endpoint at this path (often /mcp, or /sse for older servers)';
  if (status !== null) return `HTTP ${status}: ${firstLine(error.message.replace(/^(Streamable HTTP|SSE) error: /, ''))}`;
  const network = networkCause(error);
  if (network) return `cannot reach the server: ${network}`;
  if (/Unexpected content type/.test(error?.message ?? '')) {
    return `it answered with ${firstLine(error.message.replace(/^.*Unexpected content type: */, 'content type ').replace(/^content type $/, 'no content type'), 120)}, `
      + 'not JSON or an event stream: is this an MCP endpoint?';
  }
  return null;
}

// Explains an error of a JSON-RPC exchange that is the same over every transport.
function explainProtocolFailure(error, { step }) {
  if (error instanceof McpError) {
    // -32000 is also the SDK's "connection closed"; only a closed transport means that.
    if (error.code === ErrorCode.ConnectionClosed && error.closedEarly) return `the connection closed during ${step}`;
    if (error.code === ErrorCode.MethodNotFound && step.startsWith('tools/list')) {
      return 'the server does not offer tools (tools/list: method not found)';
    }
    return `the server answered ${step} with an error: ${firstLine(error.message)}`;
  }
  if (error?.name === 'ZodError' || error instanceof SyntaxError) {
    return `the server answered something that is not a valid MCP message during ${step}: ${firstLine(error.message)}`;
  }
  if (/protocol version is not supported/i.test(error?.message ?? '')) return firstLine(error.message);
  return null;
}

// Keeps the last few KB of a stdio server's standard error.
function stderrTail(stream) {
  let tail = '';
  stream?.on('data', (chunk) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  return () => {
    const lines = tail.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
    return lines.slice(-15);
  };
}

// Runs one client session over `transport`: initialize, then every page of tools/list.
// Bounded by `deadline` (ms since the epoch); the session is always closed.
async function listOverTransport(transport, { deadline }) {
  const client = new Client(CLIENT_INFO, { capabilities: {} });
  const errors = []; // transport errors the SDK reports but does not throw (e.g. a non-JSON line on stdout)
  client.onerror = (error) => {
    if (errors.length < 5) errors.push(error);
  };
  let closed = false;
  client.onclose = () => {
    closed = true;
  };
  const remaining = () => Math.max(1, deadline - Date.now());

  let timer;
  const timedOut = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ScanFailure('timeout')), remaining());
  });
  // What was under way, for the message when it fails or times out. connect() starts the
  // transport (spawns a stdio server, opens an SSE stream) and then sends initialize.
  let step = transport instanceof StdioClientTransport ? 'startup' : 'connection';
  const startTransport = transport.start.bind(transport);
  transport.start = async () => {
    await startTransport();
    step = 'initialize';
  };
  const session = (async () => {
    await client.connect(transport, { timeout: remaining() });
    const server = client.getServerVersion() ?? {};
    const tools = [];
    const seenCursors = new Set();
    let cursor;
    for (let page = 1; ; page += 1) {
      step = page === 1 ? 'tools/list' : `tools/list (page ${page})`;
      // ResultSchema keeps the answer as sent: the SDK's tools/list schema would drop fields,
      // reject a whole listing for one sloppy tool, and compile every outputSchema; the
      // scanner checks the shape itself (ScanError) and reads only what it classifies.
      const result = await client.request(
        { method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
        ResultSchema,
        { timeout: remaining() },
      );
      if (!Array.isArray(result.tools)) {
        throw new ScanError(`the tools/list answer has no "tools" array (got keys ${JSON.stringify(Object.keys(result).slice(0, 5))})`);
      }
      tools.push(...result.tools);
      if (result.nextCursor === undefined || result.nextCursor === null) break;
      if (typeof result.nextCursor !== 'string') throw new ScanError(`tools/list answered a nextCursor that is not a string: ${JSON.stringify(result.nextCursor)}`);
      if (seenCursors.has(result.nextCursor)) throw new ScanError(`tools/list pagination loops: nextCursor ${JSON.stringify(result.nextCursor)} came back`);
      if (page >= MAX_PAGES) throw new ScanError(`tools/list did not end after ${MAX_PAGES} pages`);
      seenCursors.add(result.nextCursor);
      cursor = result.nextCursor;
    }
    return { server: { name: server.name, version: server.version }, tools };
  })();
  session.catch(() => {}); // when the timeout wins, the session's own rejection is expected

  try {
    return await Promise.race([session, timedOut]);
  } catch (caught) {
    // The SDK's own request timeout ends at the same deadline: one timeout, one message.
    const error = caught instanceof McpError && caught.code === ErrorCode.RequestTimeout ? new ScanFailure('timeout', { cause: caught })
      : caught instanceof Error ? caught : new Error(String(caught));
    error.step ??= step;
    error.transportErrors ??= errors;
    error.closedEarly ??= closed;
    // A stdio server that did not answer in time gets no 2 s grace on closed stdin (the
    // SDK's first step when closing): it is told to stop at once.
    if (error instanceof ScanFailure && error.message === 'timeout' && transport.pid) {
      try {
        process.kill(transport.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    throw error;
  } finally {
    clearTimeout(timer);
    await closeSession(client, transport);
  }
}

// Ends the session politely (an HTTP DELETE for the session; stdin closed, then SIGTERM,
// then SIGKILL for a stdio child, as the SDK does), without letting a stuck server hold us.
async function closeSession(client, transport) {
  if (typeof transport.terminateSession === 'function' && transport.sessionId) {
    await Promise.race([transport.terminateSession().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  await client.close().catch(() => {});
}

function timeoutMessage(what, timeoutMs, step) {
  return `no answer from ${what} within ${seconds(timeoutMs)} (during ${step}); if the server is just slow, raise the limit with --timeout MS`;
}

async function listHttp(target, timeoutMs) {
  const { url, headers } = target;
  const sentAuth = Object.keys(headers).length > 0;
  const deadline = Date.now() + timeoutMs;
  const attempt = (Transport) => listOverTransport(new Transport(url, { requestInit: { headers } }), { deadline });

  let streamableError;
  try {
    return { ...(await attempt(StreamableHTTPClientTransport)), transport: 'streamable-http' };
  } catch (error) {
    streamableError = error;
  }
  // Servers of the 2024-11-05 protocol speak HTTP+SSE: a 4xx to the POST (other than an
  // auth refusal) is the sign the specification gives for trying it.
  const status = httpStatusOf(streamableError);
  const tryOldTransport = status !== null && status >= 400 && status < 500 && ![401, 403, 407, 429].includes(status)
    && Date.now() < deadline;
  let sseError;
  if (tryOldTransport) {
    try {
      return { ...(await attempt(SSEClientTransport)), transport: 'sse' };
    } catch (error) {
      sseError = error;
    }
  }

  const where = url.href;
  const explain = (error) => {
    if (error instanceof ScanFailure && error.message === 'timeout') return timeoutMessage(where, timeoutMs, error.step);
    return explainHttpFailure(error, { sentAuth }) ?? explainProtocolFailure(error, { step: error.step })
      ?? firstLine(error.message || String(error));
  };
  if (streamableError instanceof ScanError) throw streamableError;
  if (sseError instanceof ScanError) throw sseError;
  const main = explain(streamableError);
  if (main.startsWith('no answer from')) throw new ScanFailure(main, { cause: streamableError });
  let fallback = '';
  if (sseError) {
    const second = explain(sseError);
    fallback = second === main ? '; the older HTTP+SSE transport, tried next, got the same'
      : `; the older HTTP+SSE transport (GET ${where}), tried next, failed too: ${second}`;
  }
  throw new ScanFailure(`cannot scan ${where}: ${main}${fallback}`, { cause: streamableError });
}

async function listStdio(target, timeoutMs) {
  const shown = showCommand(target.command, target.args);
  const transport = new StdioClientTransport({
    command: target.command,
    args: target.args,
    // The whole environment, as a shell would pass it: servers read their API keys from it,
    // and the user chose to run this command (the SDK's default keeps only HOME, PATH, ...).
    env: Object.fromEntries(Object.entries(process.env).filter(([, v]) => typeof v === 'string')),
    // Captured, not passed through: the scan's output stays clean, and a failure shows it.
    stderr: 'pipe',
  });
  const serverStderr = stderrTail(transport.stderr);
  try {
    return { ...(await listOverTransport(transport, { deadline: Date.now() + timeoutMs })), transport: 'stdio' };
  } catch (error) {
    if (error instanceof ScanError) throw error;
    let message;
    if (error.code === 'ENOENT' && error.syscall?.startsWith('spawn')) {
      message = `cannot start ${JSON.stringify(target.command)}: command not found (is it installed and on PATH?)`;
    } else if (error.code === 'EACCES' && error.syscall?.startsWith('spawn')) {
      message = `cannot start ${JSON.stringify(target.command)}: permission denied (not executable)`;
    } else if (error instanceof ScanFailure && error.message === 'timeout') {
      message = timeoutMessage(`the server ${shown}`, timeoutMs, error.step);
    } else if (error.closedEarly) {
      message = `the server ${shown} exited during ${error.step}`;
    } else {
      message = `cannot scan the server ${shown}: ${explainProtocolFailure(error, { step: error.step }) ?? firstLine(error.message || String(error))}`;
    }
    // A stdio server that prints logs to stdout, or is no MCP server at all, shows here.
    const notJsonRpc = (error.transportErrors ?? []).find((e) => e instanceof SyntaxError || e?.name === 'ZodError');
    if (notJsonRpc) message += `; it wrote something to standard output that is not JSON-RPC (${firstLine(notJsonRpc.message, 160)})`;
    const lines = serverStderr();
    if (lines.length > 0) message += `\nserver stderr (last lines):\n${lines.map((l) => `  ${terminalSafe(l)}`).join('\n')}`;
    throw new ScanFailure(message, { cause: error });
  }
}

/**
 * Connects to the server, lists every page of its tools and closes the session.
 * @param {{kind: 'http', url: URL, headers: Record<string, string>} | {kind: 'stdio', command: string, args: string[]}} target
 * @returns {Promise<{server: {name?: string, version?: string}, tools: object[], transport: 'streamable-http'|'sse'|'stdio'}>}
 * @throws {ScanFailure | ScanError}
 */
export function listServerTools(target, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  if (target.kind === 'file') return listFile(target);
  return target.kind === 'http' ? listHttp(target, timeoutMs) : listStdio(target, timeoutMs);
}

// A saved tools/list answer (a result, a JSON-RPC response, or an array of tools).
async function listFile(target) {
  let text;
  try {
    text = await readFile(target.path, 'utf8');
  } catch (error) {
    throw new ScanFailure(`cannot read ${target.path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ScanFailure(`${target.path} is not JSON: ${error.message}`);
  }
  const server = isPlainObject(parsed) && isPlainObject(parsed.serverInfo) ? parsed.serverInfo : {};
  return { server, tools: toolsOf(parsed), transport: 'file' };
}

const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

// JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls, bidi
// overrides and line separators raw, which could reorder or hide what is shown. As \uXXXX
// escapes they parse back to the same strings, so the text stays valid and equivalent.
const RAW_IN_JSON_BUT_UNSAFE = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
function terminalJson(value, indent) {
  return JSON.stringify(value, null, indent)
    .replace(RAW_IN_JSON_BUT_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function policySummary(policy) {
  const entries = Object.values(policy.tools);
  const approval = entries.filter((entry) => entry.action === 'require_approval').length;
  const limited = entries.filter((entry) => entry.action === undefined && entry.rate_limit !== undefined).length;
  const allowed = entries.length - approval - limited;
  return `${allowed} allowed, ${limited} rate-limited, ${approval ? `${approval} only with approval, ` : ''}${policy.hide.length} hidden; every other tool denied`;
}

/** `toolgate scan ...`: see USAGE. */
export async function run(args, { fail }) {
  const request = commandLine(args, { command: 'scan', usage: USAGE, parse: parseScanArgs, fail });
  if (!request) return undefined;
  const { target, timeoutMs, output } = request;

  let listing;
  let result;
  try {
    listing = await listServerTools(target, { timeoutMs });
    result = scanTools({ tools: listing.tools });
    // Signs of instructions to the model join each tool's signals; the policy
    // is written again so that --hide-flagged can hide those tools.
    flagPoisoned(result.tools, listing.tools);
    result.policy = starterPolicy(result.tools, { hideFlagged: output.hideFlagged === true });
  } catch (error) {
    if (error instanceof ScanError) {
      return fail(`scan: the tools/list answer of ${describeTarget(target)} cannot be scanned: ${error.message}`, 1);
    }
    if (error instanceof ScanFailure) return fail(`scan: ${error.message}`, 1);
    throw error;
  }

  // The policy must pass the core's own check before anyone is told to use it.
  const policyText = `${terminalJson(result.policy, 2)}\n`;
  const toolgate = await loadToolgate();
  const { ok, diagnostics } = toolgate.check(policyText);
  if (!ok) {
    const problems = diagnostics.map((d) => `  ${d.severity}: ${d.message} (${d.pointer})`).join('\n');
    return fail(`scan: the generated starter policy does not pass toolgate check (a bug in toolgate scan; please report it):\n${problems}`, 1);
  }
  for (const d of diagnostics) process.stderr.write(`toolgate: scan: starter policy ${d.severity}: ${d.message} (${d.pointer})\n`);

  if (output.out !== undefined) {
    try {
      await writeFile(output.out, policyText, { flag: output.force ? 'w' : 'wx' });
    } catch (error) {
      const reason = error.code === 'EEXIST' ? 'it exists (add --force to replace it)'
        : error.code === 'ENOENT' ? 'no such directory' : error.message;
      return fail(`scan: cannot write the policy to ${output.out}: ${reason}`, 1);
    }
  }

  const server = { name: listing.server.name, version: listing.server.version };
  if (output.json) {
    process.stdout.write(`${terminalJson({ server, tools: result.tools, policy: result.policy })}\n`);
    return undefined;
  }

  const via = target.kind === 'stdio' ? 'stdio' : target.kind === 'file' ? 'saved tools/list' : listing.transport === 'sse' ? 'HTTP+SSE' : 'Streamable HTTP';
  const serverName = [server.name, server.version].filter((s) => typeof s === 'string' && s !== '').join(' ') || '(unnamed server)';
  const lines = [
    `Server: ${terminalSafe(serverName)} (${via}: ${terminalSafe(describeTarget(target))})`,
    '',
    formatScan(result, { details: output.details }).trimEnd(),
    '',
  ];
  if (output.out !== undefined) {
    lines.push(`Starter policy written to ${output.out} (${policySummary(result.policy)}). Review it before use.`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    lines.push(
      `--- Starter policy (${policySummary(result.policy)}) ---`,
      '# Review it, then save it with --out policy.json (or copy the JSON below).',
      '',
    );
    process.stdout.write(`${lines.join('\n')}\n${policyText}`);
  }
  return undefined;
}
