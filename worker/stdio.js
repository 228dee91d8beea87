// The proxy for local stdio servers: toolgate runs the server as its child and
// sits on the pipe between a desktop client and it. MCP's stdio transport is
// newline-delimited JSON-RPC, one message (or, in 2025-03-26, one batch) per
// line; the same gate as over HTTP decides every tools/call line before the
// child sees it.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { findJsonProblem } from './json-check.js';
import { Gate, JsonRpcError, errorMessage } from './gate.js';

/**
 * Runs `command` with the policy in front of it, on the given streams.
 * Resolves with the child's exit code once it has exited.
 * @param {object} options
 * @param {string} options.command
 * @param {string[]} [options.args]
 * @param {() => import('../wasm/index.js').Policy} options.policy the current policy (reload swaps it)
 * @param {{id: string, attributes?: object}} options.grant who the desktop client is
 * @param {import('./gate.js').Gate} options.gate
 * @param {NodeJS.ReadableStream} [options.input] the client's messages (default stdin)
 * @param {NodeJS.WritableStream} [options.output] to the client (default stdout)
 * @param {(id: string) => string | undefined} [options.approvalUrl]
 * @param {number} [options.maxLineBytes] longer lines are refused (default 4 MiB)
 * @param {object} [options.spawnOptions]
 */
export async function runStdioProxy({
  command, args = [], policy, grant, gate, input = process.stdin, output = process.stdout,
  approvalUrl, maxLineBytes = 4 * 1024 * 1024, spawnOptions = {}, server = 'stdio',
}) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], ...spawnOptions });
  const spawned = new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  await spawned;

  // Calls forwarded and not answered yet, by request id (a session is one
  // long stream, so tickets outlive the line that made them).
  const tickets = new Map();
  const send = (message) => output.write(`${JSON.stringify(message)}\n`);

  const fromClient = createInterface({ input, crlfDelay: Infinity });
  const clientDone = (async () => {
    for await (const line of fromClient) {
      if (line.trim() === '') continue;
      const reply = await admitLine(line);
      if (reply) send(reply);
      if (child.stdin.destroyed) break;
    }
    child.stdin.end();
  })();

  async function admitLine(line) {
    if (Buffer.byteLength(line) > maxLineBytes) {
      return errorMessage(null, JsonRpcError.INVALID_REQUEST, `The message exceeds ${maxLineBytes} bytes; it was not forwarded.`);
    }
    let body;
    try {
      body = JSON.parse(line);
    } catch (error) {
      return errorMessage(null, JsonRpcError.PARSE, `Parse error: not JSON (${error.message}).`);
    }
    const problem = findJsonProblem(line);
    if (problem) {
      return errorMessage(null, JsonRpcError.INVALID_REQUEST, problem.problem === 'duplicate_key'
        ? `Invalid Request: the key ${JSON.stringify(problem.key)} appears twice at ${problem.pointer}; nothing was forwarded.`
        : `Invalid Request: nesting deeper than 256 levels at ${problem.pointer}; nothing was forwarded.`);
    }
    const batch = Array.isArray(body);
    if (batch && body.length === 0) return errorMessage(null, JsonRpcError.INVALID_REQUEST, 'Invalid Request: an empty batch.');
    const current = policy();
    const admitted = await gate.admit(batch ? body : [body], { grant, server, policy: current, approvalUrl });
    if (admitted.refused) return admitted.refused;
    for (const [key, ticket] of admitted.tickets) {
      // A request id reused while its call is still running would make the
      // answers ambiguous: the earlier call is settled as answered.
      tickets.get(key)?.settle({ failed: false, status: 'id_reused' });
      tickets.set(key, ticket);
    }
    if (admitted.forward.length > 0) {
      child.stdin.write(`${JSON.stringify(batch ? admitted.forward : admitted.forward[0])}\n`);
    }
    if (admitted.answers.length === 0) return null;
    return batch ? admitted.answers : admitted.answers[0];
  }

  const fromServer = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const serverDone = (async () => {
    for await (const line of fromServer) {
      output.write(`${inspectLine(line)}\n`);
    }
  })();

  function inspectLine(line) {
    let parsed;
    try {
      parsed = JSON.parse(line);
    } catch {
      return line; // not a message: the client decides what to make of it
    }
    const current = policy();
    const inspect = (message) => {
      const next = gate.inspect(message, { server, policy: current, tickets, status: 'stdio' });
      if (message && typeof message === 'object' && 'id' in message && !('method' in message)) tickets.delete(JSON.stringify(message.id));
      return next;
    };
    if (Array.isArray(parsed)) {
      const next = parsed.map(inspect);
      return next.every((m, i) => m === parsed[i]) ? line : JSON.stringify(next);
    }
    const next = inspect(parsed);
    return next === parsed ? line : JSON.stringify(next);
  }

  // The child stops reading when it dies; writes after that must not crash us.
  child.stdin.on('error', () => {});
  const code = await exited;
  fromClient.close();
  await serverDone;
  // Calls the server never answered: it died, so they failed; quota goes back.
  Gate.settleAll(tickets, { failed: true, status: 'stdio', outcome: 'server_exited' });
  await clientDone.catch(() => {});
  return code;
}
