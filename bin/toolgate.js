#!/usr/bin/env node
// toolgate command line: check and evaluate policies on the WebAssembly core.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore, PolicyError } from '../wasm/index.js';

const HELP = `toolgate: a policy layer for AI agents' MCP tool calls

Usage:
  toolgate check POLICY.json [POLICY.json ...] [--json]
      Validate policies. Prints FILE:LINE:COLUMN: error|warning: MESSAGE (POINTER)
      for each problem (FILE: error: cannot read FILE: WHY for a file it cannot
      read); exits 0 when every policy is valid, 1 otherwise.

  toolgate eval --policy POLICY.json [--trace]
      Read calls as JSON Lines on standard input, write one decision per line.
      --trace adds "trace": the steps of each decision (the entry that matched,
      each condition with the value it read and whether it held, each limit
      with its count before the call, the approval looked up).
      A call:     {"tool": "run", "arguments": {...}, "grant": "alice" | {"id": "alice", ...},
                   "now": 1767225600000 | "2026-01-01T00:00:00Z"}
      An approval: {"approve": "<approval_id>", "now": ...}
      Counters and approvals live in memory for the whole run. A line with an
      "expect" field ("allow", "deny", "approval_required", or {"decision", "code"})
      also gets "pass": true|false, and the run exits 1 if any expectation failed.

  toolgate serve --policy POLICY.json --upstream URL [--grants G] [--port N] [...]
      The MCP proxy (Streamable HTTP): clients connect to http://HOST:PORT/mcp.
      toolgate serve --help lists every option.

  toolgate stdio --policy POLICY.json [...] -- COMMAND [ARGS...]
      Runs a stdio MCP server as a child with the policy enforced on its pipe.

  toolgate replay --policy NEW.json [--baseline OLD.json] CALLS.jsonl
      Replay recorded calls (audit events written with --audit-arguments, or
      eval's input) through NEW.json and print each call whose decision changes
      as a JSON line, with a summary by change, rule and tool on stderr; exits 1
      when any decision changed. "toolgate replay --help" for all options.

  toolgate approvals list|show ID|approve ID|deny ID [--url URL] [--json]
      The calls waiting for a human at a running proxy: list them, show one,
      approve or deny it (admin token from TOOLGATE_ADMIN_TOKEN, or the variable
      named by --admin-token-env). "toolgate approvals --help" for all options.

  toolgate scan URL [--header "Name: value"]... [--bearer TOKEN] [--json] [--out FILE]
  toolgate scan [--json] [--out FILE] -- COMMAND [ARGS...]
      Connect to an MCP server (Streamable HTTP or HTTP+SSE at URL, or a stdio
      server started as COMMAND), classify each tool read / write / execute /
      destructive with a risk level and signals, and print a starter policy
      (read allowed, write 30/minute, execute 10/minute, destructive hidden,
      tools handling credentials only with a human's approval).
      "toolgate scan --help" for all options.
  toolgate scan --file TOOLS_LIST.json [--json] [--out FILE]
      The same for a saved tools/list answer, offline.

  toolgate pin URL|--file TOOLS_LIST.json|-- COMMAND [ARGS...] [--out PINS.json]
      Pin each tool's definition (SHA-256 of its RFC 8785 form, and the definition)
      for serve/stdio --pins; flags descriptions that carry instructions to the model.
  toolgate pin --diff PINS.json URL|--file FILE|-- COMMAND [ARGS...]
      What changed since the pins, field by field. "toolgate pin --help" for all options.

  toolgate --version    Print the version.
  toolgate --help       Print this help.
`;

// `toolgate eval ... | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const packageJson = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));

function fail(message, code = 1) {
  process.stderr.write(`toolgate: ${message}\n`);
  process.exitCode = code;
}

async function readPolicy(path) {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const reason = { ENOENT: 'no such file', EISDIR: 'it is a directory', EACCES: 'permission denied' }[error.code] ?? error.message;
    throw new Error(`cannot read ${path}: ${reason}`);
  }
}

function formatDiagnostic(file, d) {
  return `${file}:${d.line}:${d.column}: ${d.severity}: ${d.message} (${d.pointer})`;
}

async function check(args) {
  const json = args.includes('--json');
  const files = args.filter((a) => a !== '--json');
  if (files.length === 0) return fail('check needs a policy file: toolgate check POLICY.json', 1);
  const toolgate = await loadToolgate();
  let allValid = true;
  const reports = [];
  for (const file of files) {
    let text;
    try {
      text = await readPolicy(file);
    } catch (error) {
      allValid = false;
      if (json) reports.push({ file, ok: false, diagnostics: [], error: error.message });
      // No line, column or pointer to give: FILE: error: cannot read FILE: why.
      else process.stdout.write(`${file}: error: ${error.message}\n`);
      continue;
    }
    const { ok, diagnostics } = toolgate.check(text);
    allValid &&= ok;
    if (json) {
      reports.push({ file, ok, diagnostics });
    } else {
      for (const d of diagnostics) process.stdout.write(`${formatDiagnostic(file, d)}\n`);
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(files.length === 1 ? reports[0] : reports)}\n`);
  process.exitCode = allValid ? 0 : 1;
}

// Does a decision meet a line's "expect"?
function meets(expect, decision) {
  if (typeof expect === 'string') return decision.decision === expect || decision.code === expect;
  if (expect && typeof expect === 'object') {
    return Object.entries(expect).every(([key, value]) => JSON.stringify(decision[key]) === JSON.stringify(value));
  }
  return false;
}

async function evaluate(args) {
  const at = args.indexOf('--policy');
  const policyPath = at >= 0 ? args[at + 1] : undefined;
  if (!policyPath) return fail('eval needs --policy POLICY.json', 1);
  const unknown = args.filter((arg, i) => arg.startsWith('--') && arg !== '--policy' && arg !== '--trace' && args[i - 1] !== '--policy');
  if (unknown.length > 0) return fail(`eval: unknown option ${unknown[0]} (eval takes --policy FILE and --trace)`, 2);
  const trace = args.includes('--trace');
  const toolgate = await loadToolgate();
  let policy;
  try {
    // Compiled once: a policy that does not compile throws with every diagnostic.
    policy = toolgate.compile(await readPolicy(policyPath), { source: policyPath });
  } catch (error) {
    if (!(error instanceof PolicyError)) return fail(error.message, 1);
    for (const d of error.diagnostics) process.stderr.write(`${formatDiagnostic(policyPath, d)}\n`);
    return fail(`${policyPath} is not a valid policy`, 1);
  }
  const counters = new MemoryCounterStore();
  const approvals = new MemoryApprovalStore();
  let failedExpectations = 0;
  const out = [];
  const flush = () => {
    if (out.length > 0) process.stdout.write(out.join(''));
    out.length = 0;
  };
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const result = await evaluateLine(toolgate, policy, line, { counters, approvals }, { trace });
    if (result.pass === false) failedExpectations += 1;
    out.push(`${JSON.stringify(result)}\n`);
    if (out.length >= 256) flush();
  }
  flush();
  if (failedExpectations > 0) {
    fail(`${failedExpectations} expectation(s) not met`, 1);
  }
}

async function evaluateLine(toolgate, policy, line, stores, { trace = false } = {}) {
  // Approval lines are the CLI's own; everything else is a call for the core,
  // which parses it strictly (duplicate keys, unknown fields, types).
  let parsed;
  if (line.includes('"approve"')) {
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
  }
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.hasOwn(parsed, 'approve')) {
    return approve(toolgate, parsed, stores);
  }
  const decision = trace ? await policy.explain(line, { ...stores, now: Date.now() }) : await policy.decide(line, { ...stores, now: Date.now() });
  let expect;
  if (line.includes('"expect"')) {
    try {
      expect = JSON.parse(line).expect;
    } catch {
      expect = undefined;
    }
  }
  if (expect !== undefined) decision.pass = meets(expect, decision);
  // "mode": "monitor" (the document's or the tool's entry): the same decision, marked as a
  // proxy would record it.
  if (policy.modes.policy || policy.modes.tools.length > 0) {
    let tool;
    try {
      tool = JSON.parse(line).tool;
    } catch {
      tool = undefined;
    }
    if (typeof tool === 'string' && policy.isMonitored(tool)) decision.enforced = false;
  }
  return decision;
}

async function approve(toolgate, line, { approvals }) {
  const malformed = (why) => ({ decision: 'deny', code: 'invalid_call', rule: '', message: `Malformed approval: ${why}` });
  const extra = Object.keys(line).filter((k) => k !== 'approve' && k !== 'now');
  if (extra.length > 0) return malformed(`unknown field "${extra[0]}" (an approval has "approve" and "now").`);
  // Any id may be approved: one that no call produces simply never matches.
  if (typeof line.approve !== 'string' || line.approve === '') {
    return malformed('"approve" must be an approval id (the approval_id of a decision).');
  }
  const now = line.now === undefined ? Date.now() : toolgate.parseTime(line.now);
  if (Number.isNaN(now)) return malformed('"now" must be epoch milliseconds or an RFC 3339 time.');
  await approvals.approve(line.approve, now);
  return { approved: line.approve };
}

export async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case 'check':
    case 'eval':
      if (args.includes('--help') || args.includes('-h')) {
        process.stdout.write(HELP);
        return undefined;
      }
      return command === 'check' ? check(args) : evaluate(args);
    // The proxy's commands live in their own modules, loaded only when used.
    case 'serve':
    case 'stdio':
    case 'scan':
    case 'replay':
    case 'pin':
    case 'approvals': {
      const { run } = await import(`../lib/cli/${command}.js`);
      return run(args, { fail });
    }
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`toolgate ${packageJson.version}\n`);
      return undefined;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return undefined;
    default:
      process.stderr.write(HELP);
      return fail(`unknown command "${command}"`, 2);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])) {
  await main(process.argv.slice(2));
}
