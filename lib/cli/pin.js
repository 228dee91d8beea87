// `toolgate pin`: pin a server's tool definitions (worker/pins.js) so that
// `toolgate serve --pins` / `toolgate stdio --pins` / the Workers entry hold the
// server to what was reviewed; `--diff` shows what changed since, field by field.
// Connects like `toolgate scan` (its connection code), or reads a saved
// tools/list answer (--file). Descriptions and schema texts that carry signs of
// instructions to the model are flagged on the way (lib/poisoning.js).
import { readFile, writeFile } from 'node:fs/promises';

import { canonicalJson } from '../../worker/audit.js';
import { canonicalDefinition, changedFields, makePins, PinsError, toolDefinition } from '../../worker/pins.js';
import { nodeSha256Hex, readPinsFile } from '../pins-file.js';
import { ScanError, terminalSafe } from '../scan.js';
import { findPoisoning } from '../poisoning.js';
import { commandLine, UsageError } from './args.js';
import { listServerTools, parseScanArgs, ScanFailure } from './scan.js';

export const USAGE = `Usage:
  toolgate pin URL [--header "Name: value"]... [--bearer TOKEN] [options]
  toolgate pin [options] -- COMMAND [ARGS...]
  toolgate pin --file TOOLS_LIST.json [options]
  toolgate pin --diff PINS.json URL | --file FILE | -- COMMAND [ARGS...]

Lists the server's tools (Streamable HTTP at URL, or a stdio server started as
COMMAND, as toolgate scan does; or a saved tools/list answer with --file) and
writes a pins file: per server and tool, the SHA-256 of the RFC 8785 canonical
JSON of its definition (name, title, description, inputSchema, outputSchema,
annotations) and the definition itself. toolgate serve/stdio --pins FILE then
remove any tool whose definition is not its pin from tools/list and deny its
calls (tool_changed).

Options:
  --out FILE       Write the pins to FILE instead of standard output. An existing
                   FILE is refused unless --force: then this server's entry is
                   replaced and the file's other servers are kept.
  --force          With --out: update FILE if it exists.
  --server NAME    The server's name in the pins file (default "default" for a
                   URL or --file, "stdio" for a command; with one server, serve
                   and stdio use the file's only entry whatever its name).
  --file FILE      Read a saved tools/list answer (a result {"tools": [...]}, a
                   JSON-RPC response, or an array of tools) instead of a server.
  --diff PINS      Compare the server's tools with the pins in PINS, field by
                   field; exits 0 when they match, 1 when anything changed.
  --hide-flagged   Leave tools flagged for instructions to the model unpinned, so
                   that serve/stdio --pins hide them and deny their calls.
  --header, --bearer, --timeout MS   As for toolgate scan.
  -h, --help       Print this help.

Every tool whose description or schema texts show signs of instructions to the
model (hidden characters, instruction blocks, requests for files or secrets,
mentions of other tools, long payloads) is reported on standard error with the
reasons: review those before pinning them. With --out FILE, the tools of the
other servers already in FILE are compared too (shadowing: the same name, or a
text naming another server's tool).

Exits 0 on success, 1 when the server cannot be listed or the pins cannot be
written (or --diff found changes), 2 for a usage error.
`;


// pin's own options, taken out before the rest is read as scan's (URL,
// --header, --bearer, --timeout, --out, --force, -- COMMAND).
function splitOwnOptions(args) {
  const own = { server: undefined, file: undefined, diff: undefined, hideFlagged: false };
  const rest = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (arg === '--hide-flagged') {
      own.hideFlagged = true;
      continue;
    }
    const match = /^--(server|file|diff)(?:=(.*))?$/.exec(arg);
    if (!match) {
      rest.push(arg);
      continue;
    }
    let value = match[2];
    if (value === undefined) {
      value = args[i + 1];
      i += 1;
    }
    if (value === undefined || value === '' || value === '--') throw new UsageError(`--${match[1]} expects a value`);
    if (own[match[1]] !== undefined) throw new UsageError(`--${match[1]} given twice`);
    own[match[1]] = value;
  }
  return { own, rest };
}

export function parsePinArgs(args) {
  const { own, rest } = splitOwnOptions(args);
  if (rest.includes('-h') || rest.includes('--help')) return { help: true };
  if (rest.includes('--json') || rest.includes('--details')) throw new UsageError('pin writes JSON already; --json and --details are for scan');
  let request;
  if (own.file !== undefined) {
    // No server: only --out / --force may remain.
    const leftover = rest.filter((arg, i) => !(arg === '--force' || arg === '--out' || rest[i - 1] === '--out' || arg.startsWith('--out=')));
    if (leftover.length > 0) throw new UsageError(`with --file, give no server (got ${JSON.stringify(leftover[0])})`);
    const at = rest.indexOf('--out');
    const eq = rest.find((arg) => arg.startsWith('--out='));
    const out = eq ? eq.slice(6) : at >= 0 ? rest[at + 1] : undefined;
    if (at >= 0 && (out === undefined || out === '')) throw new UsageError('--out expects a file name');
    const force = rest.includes('--force');
    if (force && out === undefined) throw new UsageError('--force only makes sense with --out FILE');
    request = { target: { kind: 'file', path: own.file }, output: { out, force } };
  } else {
    request = parseScanArgs(rest); // its UsageError is pin's: the same class (./args.js)
  }
  if (own.diff !== undefined && request.output.out !== undefined) throw new UsageError('--diff prints what changed; it writes no pins (drop --out)');
  const server = own.server ?? (request.target.kind === 'stdio' ? 'stdio' : 'default');
  if (own.hideFlagged && own.diff !== undefined) throw new UsageError('--hide-flagged is for writing pins, not --diff');
  return { ...request, server, diff: own.diff, hideFlagged: own.hideFlagged };
}

function describeTarget(target) {
  if (target.kind === 'file') return target.path;
  if (target.kind === 'http') return target.url.href;
  return [target.command, ...target.args].join(' ');
}

// A saved tools/list answer is read as toolgate scan --file reads it.
async function toolsFrom(target, timeoutMs) {
  return (await listServerTools(target, { timeoutMs })).tools;
}

// One field's value as shown in a diff: its canonical JSON, terminal-safe.
const show = (value) => (value === undefined ? '(absent)' : terminalSafe(canonicalJson(value)));

/** The field-by-field differences between pinned tools and listed ones, as lines for a person. */
export function diffLines(pinned, tools) {
  const lines = [];
  const listed = new Map(tools.filter((tool) => tool && typeof tool.name === 'string').map((tool) => [tool.name, tool]));
  for (const [name, pin] of pinned.tools) {
    const tool = listed.get(name);
    if (!tool) {
      lines.push(`- ${terminalSafe(name)}: pinned, no longer listed`);
      continue;
    }
    const now = canonicalDefinition(toolDefinition(tool));
    const fields = changedFields(pin, now);
    if (fields.length === 0) continue;
    lines.push(`~ ${terminalSafe(name)}: changed (${fields.join(', ')})`);
    const definition = toolDefinition(tool);
    for (const field of fields) {
      lines.push(`    ${field}:`, `      pinned: ${show(pin.definition[field])}`, `      now:    ${show(definition[field])}`);
    }
  }
  for (const [name, tool] of listed) {
    if (!pinned.tools.has(name)) lines.push(`+ ${terminalSafe(name)}: listed, not pinned`, `      now:    ${show(toolDefinition(tool))}`);
  }
  return lines;
}

// Poisoning signals of this server's tools, reported on stderr; with other
// servers (those already in the pins file), shadowing too. Returns the names
// of this server's flagged tools.
function reportPoisoning(tools, server, others = {}) {
  const flagged = new Set();
  const findings = findPoisoning({ ...others, [server]: tools }).filter((finding) => finding.server === server);
  for (const finding of findings) {
    flagged.add(finding.tool);
    process.stderr.write(`toolgate: pin: ${terminalSafe(server)}: tool ${terminalSafe(JSON.stringify(finding.tool))} may carry instructions to the model; review it before pinning:\n`);
    for (const signal of finding.signals) process.stderr.write(`  - ${signal.id}: ${terminalSafe(signal.detail)}\n`);
  }
  return flagged;
}

// The other servers' pinned definitions in an existing pins file (for shadowing); none when it cannot be read.
async function otherServers(path, server) {
  if (path === undefined) return {};
  try {
    const document = JSON.parse(await readFile(path, 'utf8'));
    return Object.fromEntries(Object.entries(document.servers ?? {}).filter(([name]) => name !== server)
      .map(([name, entry]) => [name, Object.values(entry?.tools ?? {}).map((pin) => pin?.definition).filter(Boolean)]));
  } catch {
    return {};
  }
}

/** `toolgate pin ...`: see USAGE. */
export async function run(args, { fail }) {
  const request = commandLine(args, { command: 'pin', usage: USAGE, parse: parsePinArgs, fail });
  if (!request) return undefined;
  const { target, output, server } = request;
  let tools;
  try {
    tools = await toolsFrom(target, request.timeoutMs);
  } catch (error) {
    if (error instanceof ScanError) return fail(`pin: the tools/list answer of ${describeTarget(target)} cannot be used: ${error.message}`, 1);
    if (error instanceof ScanFailure) return fail(`pin: ${error.message}`, 1);
    throw error;
  }
  const flagged = reportPoisoning(tools, server, await otherServers(request.diff ?? output.out, server));

  if (request.diff !== undefined) {
    let pins;
    try {
      pins = await readPinsFile(request.diff);
    } catch (error) {
      if (error instanceof PinsError) return fail(`pin: ${error.message}`, 1);
      throw error;
    }
    const entry = pins.get(server) ?? (pins.size === 1 ? [...pins.values()][0] : undefined);
    if (!entry) return fail(`pin: ${request.diff} has no pins for server "${server}" (it has: ${[...pins.keys()].join(', ') || 'none'}); name it with --server`, 1);
    const lines = diffLines(entry, tools);
    if (lines.length === 0) {
      process.stdout.write(`No changes: every tool of ${terminalSafe(describeTarget(target))} is as pinned (${entry.tools.size} tools).\n`);
      return undefined;
    }
    process.stdout.write(`${lines.join('\n')}\nReview the changes; if they are wanted, pin again (toolgate pin ... --out ${request.diff} --force).\n`);
    process.exitCode = 1;
    return undefined;
  }

  // --hide-flagged: flagged tools are left unpinned, so serve/stdio --pins hide them.
  const pinned = request.hideFlagged ? tools.filter((tool) => !flagged.has(tool?.name)) : tools;
  if (request.hideFlagged && flagged.size > 0) {
    process.stderr.write(`toolgate: pin: not pinned (--hide-flagged): ${[...flagged].map((name) => terminalSafe(JSON.stringify(name))).join(', ')}\n`);
  }
  let document;
  try {
    document = await makePins({ [server]: pinned }, nodeSha256Hex);
  } catch (error) {
    if (error instanceof PinsError || error instanceof RangeError) return fail(`pin: cannot pin the tools of ${describeTarget(target)}: ${error.message}`, 1);
    throw error;
  }
  if (output.out === undefined) {
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    return undefined;
  }
  // --force on an existing file: this server's entry is replaced, the others kept
  // (checked first: a broken file is not silently overwritten).
  let existing;
  try {
    existing = JSON.parse(await readFile(output.out, 'utf8'));
  } catch (error) {
    if (error.code !== 'ENOENT') {
      if (!output.force) return fail(`pin: cannot write the pins to ${output.out}: it exists (add --force to update it)`, 1);
      return fail(`pin: ${output.out} exists but is not a pins file (${error.message}); remove it or choose another --out`, 1);
    }
  }
  if (existing !== undefined) {
    if (!output.force) return fail(`pin: cannot write the pins to ${output.out}: it exists (add --force to update it)`, 1);
    try {
      await readPinsFile(output.out);
    } catch (error) {
      if (error instanceof PinsError) return fail(`pin: ${output.out} exists but is not a usable pins file (${error.message}); remove it or choose another --out`, 1);
      throw error;
    }
    document = { ...existing, servers: { ...existing.servers, [server]: document.servers[server] } };
  }
  try {
    await writeFile(output.out, `${JSON.stringify(document, null, 2)}\n`);
  } catch (error) {
    return fail(`pin: cannot write the pins to ${output.out}: ${error.code === 'ENOENT' ? 'no such directory' : error.message}`, 1);
  }
  const count = Object.keys(document.servers[server].tools).length;
  process.stdout.write(`Pinned ${count} tool${count === 1 ? '' : 's'} of ${terminalSafe(describeTarget(target))} as server "${terminalSafe(server)}" in ${output.out}.\n`);
  process.stdout.write(`Hold the server to them with: toolgate serve|stdio --pins ${output.out} ...\n`);
  return undefined;
}
