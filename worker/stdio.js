// The proxy for local stdio servers: toolgate runs the server as its child and
// sits on the pipe between a desktop client and it. MCP's stdio transport is
// newline-delimited JSON-RPC, one message (or, in 2025-03-26, one batch) per
// line; the same gate as over HTTP decides every tools/call line before the
// child sees it.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { listToolsThrough } from './pins.js';
import { JsonRpcError, errorMessage, isResponse, kindOf, readMessages } from './gate.js';
import { Failure, Outcome } from './exchange.js';

const idKey = (id) => JSON.stringify(id); // as the gate compares ids

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
 * @param {() => import('./pins.js').ServerPins | undefined} [options.pins] the server's tool pins (the current
 *   ones: the file may be reloaded); undefined: tools are not pinned
 * @param {number} [options.ownRequestTimeoutMs] how long toolgate waits for the server's answer to its own
 *   tools/list (pins), after which the call that needed it is denied (default 30 s)
 */
export async function runStdioProxy({
  command, args = [], policy, grant, gate, input = process.stdin, output = process.stdout,
  approvalUrl, maxLineBytes = 4 * 1024 * 1024, spawnOptions = {}, server = 'stdio', pins = () => undefined,
  ownRequestTimeoutMs = 30_000,
}) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], ...spawnOptions });
  const spawned = new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  await spawned;

  // Every request forwarded to the server and not answered yet, by id (as
  // JSON: 1 and "1" differ): its Exchange (./exchange.js) for a tools/call,
  // null for any other method. An id leaves only once the server's response
  // to it has been relayed, so a client cannot reuse it meanwhile (the gate
  // refuses it: claimId below): the server's answer to a second request with
  // that id (an unknown method's error, say) would settle the first one's
  // reservation as failed while its tool ran.
  const inFlight = new Map();
  const send = (message) => output.write(`${JSON.stringify(message)}\n`);
  let clientLeft = false; // the client's input ended (else the server went first)
  let serverGone = false;

  const fromClient = createInterface({ input, crlfDelay: Infinity });
  const clientDone = (async () => {
    for await (const line of fromClient) {
      if (line.trim() === '') continue;
      const reply = await admitLine(line);
      if (reply) send(reply);
      if (child.stdin.destroyed) break;
    }
    clientLeft = !serverGone;
    child.stdin.end();
  })();

  async function admitLine(line) {
    if (Buffer.byteLength(line) > maxLineBytes) {
      return errorMessage(null, JsonRpcError.INVALID_REQUEST, `The message exceeds ${maxLineBytes} bytes; it was not forwarded.`);
    }
    // What HTTP checks too (./gate.js readMessages), then the gate, which
    // refuses a request reusing an id still in flight on this pipe (any
    // method): nothing reserved, nothing forwarded. Lines are admitted one at
    // a time, so an id free here is still free when its line is written.
    const read = readMessages(line);
    if (read.refused) return read.refused;
    const { batch } = read;
    const currentPins = pins();
    const admitted = await gate.admit(read.messages, { grant, server, policy: policy(), approvalUrl, pins: currentPins,
      claimId: (key) => !inFlight.has(key), refreshTools: currentPins ? () => listToolsThrough(askServer) : undefined });
    if (admitted.refused) return admitted.refused;
    const { answers, exchanges } = admitted;
    if (admitted.forward.length > 0) {
      if (child.stdin.destroyed || child.stdin.writableEnded) {
        // The pipe is closed: nothing is written.
        for (const exchange of exchanges.values()) exchange.failed(Failure.SERVER_GONE, { status: 'stdio' });
        for (const message of admitted.forward) {
          if (kindOf(message) === 'request') {
            answers.push(errorMessage(message.id, JsonRpcError.INTERNAL, 'The server has exited; the request was not forwarded.'));
          }
        }
      } else {
        for (const message of admitted.forward) {
          const kind = kindOf(message);
          if (kind === 'request') inFlight.set(idKey(message.id), exchanges.get(idKey(message.id)) ?? null);
          else if (kind === 'notification' && message.method === 'notifications/cancelled') cancelled(message.params);
        }
        for (const exchange of exchanges.values()) exchange.sent();
        child.stdin.write(`${JSON.stringify(batch ? admitted.forward : admitted.forward[0])}\n`);
      }
    }
    if (answers.length === 0) return null;
    return batch ? answers : answers[0];
  }

  // A request of toolgate's own (tools/list, for pins): written to the server,
  // its answer taken out of the server's output (never relayed). The id is
  // toolgate's and unguessable (a random UUID), so no client request shares it.
  const ownRequests = new Map(); // id key -> resolve
  function askServer(message) {
    if (child.stdin.destroyed || child.stdin.writableEnded) return Promise.reject(new Error('the server has exited'));
    const key = idKey(message.id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ownRequests.delete(key);
        reject(new Error(`the server did not answer toolgate's ${message.method} within ${ownRequestTimeoutMs} ms`));
      }, ownRequestTimeoutMs);
      ownRequests.set(key, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  }

  // The client cancelled a forwarded call (the server may have run it
  // already, and may still answer with an error). The id stays in flight
  // until the server answers it, if it ever does.
  function cancelled(params) {
    if (!params || typeof params !== 'object' || !('requestId' in params)) return;
    inFlight.get(idKey(params.requestId))?.clientLeft({ status: 'stdio', outcome: Outcome.CANCELLED });
  }

  const fromServer = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const serverDone = (async () => {
    for await (const line of fromServer) {
      const { text, answered } = inspectLine(line);
      if (text !== null) output.write(`${text}\n`);
      // Relayed: the ids answered may be used again.
      for (const key of answered) inFlight.delete(key);
    }
    // The server's output ended: toolgate's own requests get no answer (the
    // calls waiting on them are denied now, not after the timeout).
    for (const answer of ownRequests.values()) answer(undefined);
    ownRequests.clear();
  })();

  // The line to relay, and the in-flight ids it answers.
  function inspectLine(line) {
    let parsed;
    try {
      parsed = JSON.parse(line);
    } catch {
      return { text: line, answered: [] }; // not a message: the client decides what to make of it
    }
    const own = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && !('method' in parsed) && ownRequests.get(idKey(parsed.id));
    if (own) {
      ownRequests.delete(idKey(parsed.id));
      own(parsed);
      return { text: null, answered: [] };
    }
    const current = policy();
    const currentPins = pins();
    const answered = [];
    const inspect = (message) => {
      // Only a response answers the client's request (and frees its id).
      const response = isResponse(message);
      if (response && inFlight.has(idKey(message.id))) answered.push(idKey(message.id));
      return gate.inspect(message, { server, policy: current, exchanges: inFlight, status: 'stdio', pins: currentPins });
    };
    if (Array.isArray(parsed)) {
      const next = parsed.map(inspect);
      return { text: next.every((m, i) => m === parsed[i]) ? line : JSON.stringify(next), answered };
    }
    const next = inspect(parsed);
    return { text: next === parsed ? line : JSON.stringify(next), answered };
  }

  // The child stops reading when it dies; writes after that must not crash us.
  child.stdin.on('error', () => {});
  const code = await exited;
  serverGone = true;
  fromClient.close();
  await serverDone;
  // A line being admitted when the server went may still be forwarded (into
  // a pipe something may read): it is in flight like the others.
  await clientDone.catch(() => {});
  // Calls forwarded and never answered: the session is over.
  for (const exchange of inFlight.values()) {
    if (!exchange) continue;
    if (clientLeft) exchange.clientLeft({ status: 'stdio' });
    else exchange.ended(Outcome.SERVER_EXITED, { status: 'stdio' });
  }
  return code;
}
