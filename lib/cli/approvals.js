// `toolgate approvals`: list, show, approve and deny the calls waiting for a
// human, through a running proxy's admin API (worker/approvals.js):
//   GET /approvals/pending, GET /approvals/<id>, POST /approvals/<id> (approve),
//   DELETE /approvals/<id> (deny), each with "Authorization: Bearer <admin token>".
//
// Tool names and arguments in a request were written by an agent: the text
// output makes them terminal-safe (an escape sequence in an argument must not
// hide or rewrite what the approver reads); --json keeps them verbatim.
import { parseArgs } from 'node:util';

import { terminalSafe } from '../scan.js';
import { commandLine, UsageError } from './args.js';
import { networkCause } from './scan.js';

export const USAGE = `Usage:
  toolgate approvals list [options]
  toolgate approvals show ID [options]
  toolgate approvals approve ID [options]
  toolgate approvals deny ID [options]

Lists the tool calls waiting for a human's approval at a running proxy
(toolgate serve, or toolgate stdio --approvals-port), shows one, approves it
(the identical call from the same grant then runs once, within the approval's
timeout) or denies it (it leaves the list). ID is the approval id: 64 hex digits,
as "list" and the agent's [APPROVAL REQUIRED] answer give it.

Options:
  --url URL                the proxy (default http://127.0.0.1:8080); the
                           approvals page's address works too
  --admin-token-env NAME   environment variable holding the admin token
                           (default TOOLGATE_ADMIN_TOKEN)
  --json                   print the API's JSON answer instead of text
  --timeout MS             give up after MS milliseconds (default 10000)
  -h, --help               print this help

Exits 0 on success; 1 when the proxy cannot be reached, refuses the token, does
not know the id, or answers with an error; 2 for a usage error.

Examples:
  TOOLGATE_ADMIN_TOKEN=... toolgate approvals list --url http://127.0.0.1:8080
  toolgate approvals approve 3f2a...e9 --url http://127.0.0.1:8765
`;

const OPTIONS = {
  url: { type: 'string' },
  'admin-token-env': { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};
const ACTIONS = ['list', 'show', 'approve', 'deny'];
const APPROVAL_ID = /^[0-9a-f]{64}$/; // as worker/approvals.js accepts them
const DEFAULT_URL = 'http://127.0.0.1:8080';
const DEFAULT_TIMEOUT_MS = 10_000;

class ApiFailure extends Error {}

function parse(args) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  const [action, id, ...rest] = positionals;
  if (!action) throw new UsageError(`say what to do: ${ACTIONS.join(', ')}`);
  if (!ACTIONS.includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}: use ${ACTIONS.join(', ')}`);
  if (action === 'list') {
    if (id !== undefined) throw new UsageError(`list takes no id (got ${JSON.stringify(id)}); to see one request: toolgate approvals show ID`);
  } else {
    if (id === undefined) throw new UsageError(`${action} needs the approval id: toolgate approvals ${action} ID`);
    if (!APPROVAL_ID.test(id)) throw new UsageError(`${JSON.stringify(id)} is not an approval id (64 lowercase hex digits, as "toolgate approvals list" shows)`);
  }
  if (rest.length > 0) throw new UsageError(`unexpected ${JSON.stringify(rest[0])}`);

  const base = proxyBase(values.url ?? DEFAULT_URL);
  const tokenVariable = values['admin-token-env'] ?? 'TOOLGATE_ADMIN_TOKEN';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenVariable)) throw new UsageError(`--admin-token-env expects an environment variable name, got ${JSON.stringify(tokenVariable)}`);
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) throw new UsageError('--timeout expects a whole number of milliseconds');
  }
  return { action, id, base, tokenVariable, json: values.json ?? false, timeoutMs };
}

// The URL of the proxy's /approvals, from what the user has at hand: the
// proxy's address, or the approvals page's (with or without #id).
function proxyBase(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(`--url expects the proxy's http:// or https:// address, got ${JSON.stringify(text)}`);
  if (url.username || url.password) throw new UsageError('--url must not carry credentials: the admin token comes from the environment');
  url.hash = '';
  url.search = '';
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/(approvals|mcp)(\/[^/]*)?$/, '');
  return `${url.href.replace(/\/+$/, '')}/approvals`;
}

async function request(options, method, path, token) {
  const url = `${options.base}${path}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      redirect: 'error', // the token must not follow a redirect elsewhere
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    if (error?.name === 'TimeoutError') throw new ApiFailure(`no answer from ${options.base} within ${options.timeoutMs} ms`);
    const reason = networkCause(error) ?? error?.message ?? String(error);
    throw new ApiFailure(`cannot reach the proxy at ${options.base}: ${reason}. Is toolgate serve (or stdio --approvals-port) running there? Set --url`);
  }
  let body;
  const text = await response.text();
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const said = typeof body?.error === 'string' ? `: ${terminalSafe(body.error)}` : '';
  if (response.status === 401) {
    throw new ApiFailure(`the proxy refused the admin token from ${options.tokenVariable} (401 Unauthorized). Use the token the proxy was started with`);
  }
  if (response.status === 403) throw new ApiFailure(`approvals are off at ${options.base} (403)${said}`);
  if (response.status === 404 && options.id && path.endsWith(options.id)) {
    throw new ApiFailure(`no request ${options.id} is waiting at ${options.base} (unknown, already decided, or expired)`);
  }
  if (!response.ok) {
    throw new ApiFailure(`${method} ${url} answered ${response.status}${said || (body === null ? ' (not a toolgate proxy? no JSON in the answer)' : '')}`);
  }
  if (body === null || typeof body !== 'object') throw new ApiFailure(`${method} ${url} did not answer JSON (is --url a toolgate proxy?)`);
  return body;
}

function age(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

// One request, as an approver reads it: everything the agent wrote is made
// terminal-safe, and the arguments are shown whole (what is approved is
// exactly these values).
function describeRequest(waiting, now) {
  const field = (value) => terminalSafe(typeof value === 'string' ? value : JSON.stringify(value ?? null));
  const lines = [
    terminalSafe(waiting.id),
    `  grant:     ${field(waiting.grant)}`,
    `  server:    ${field(waiting.server)}`,
    `  tool:      ${field(waiting.tool)}`,
    `  arguments: ${terminalSafe(JSON.stringify(waiting.arguments ?? {}))}`,
  ];
  if (Number.isFinite(waiting.requested_at)) {
    let when = `  age:       ${age(now - waiting.requested_at)} (requested ${new Date(waiting.requested_at).toISOString()}`;
    if (Number.isFinite(waiting.expires_at)) when += `; waits ${age(waiting.expires_at - now)} more`;
    lines.push(`${when})`);
  }
  return lines.join('\n');
}

/** `toolgate approvals ...`: see USAGE. */
export async function run(args, { fail }) {
  const options = commandLine(args, { command: 'approvals', usage: USAGE, parse, fail });
  if (!options) return undefined;
  const token = process.env[options.tokenVariable];
  if (!token) {
    return fail(`approvals: no admin token: set ${options.tokenVariable} to the proxy's admin token`
      + `${options.tokenVariable === 'TOOLGATE_ADMIN_TOKEN' ? ' (or name another variable with --admin-token-env)' : ''}`, 2);
  }

  // fetch would reject it as a header value and we would blame the network.
  if (/[\s\0-\x1f\x7f]/.test(token) || /[^\x20-\x7e]/.test(token)) {
    return fail(`approvals: ${options.tokenVariable} holds spaces, control or non-ASCII characters; an admin token has none`, 2);
  }
  const print = (value, text) => process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  const now = Date.now();
  try {
    const { action, id } = options;
    if (action === 'list') {
      const body = await request(options, 'GET', '/pending', token);
      const waiting = Array.isArray(body.approvals) ? body.approvals : [];
      if (waiting.length === 0) return print(body, 'No requests are waiting for approval.');
      return print(body, [
        `${waiting.length} ${waiting.length === 1 ? 'request is' : 'requests are'} waiting for approval (oldest first):`,
        ...waiting.map((w) => `\n${describeRequest(w, now)}`),
        '\nApprove one: toolgate approvals approve ID; deny: toolgate approvals deny ID',
      ].join('\n'));
    }
    if (action === 'show') {
      const waiting = await request(options, 'GET', `/${id}`, token);
      return print(waiting, describeRequest(waiting, now));
    }
    // What is decided is shown first, so the approver's terminal records it.
    const waiting = await request(options, 'GET', `/${id}`, token);
    if (action === 'approve') {
      const body = await request(options, 'POST', `/${id}`, token);
      return print(body, `Approved:\n${describeRequest(waiting, now)}\nThe identical call from grant ${terminalSafe(String(waiting.grant))} now runs once, within the approval's timeout.`);
    }
    const body = await request(options, 'DELETE', `/${id}`, token);
    return print(body, `Denied (removed from the list):\n${describeRequest(waiting, now)}`);
  } catch (error) {
    if (!(error instanceof ApiFailure)) throw error;
    return fail(`approvals: ${error.message}`, 1);
  }
}
