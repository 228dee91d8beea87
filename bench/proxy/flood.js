// The flooding grant of the fairness benchmark (fairness.bench.js), in a
// process of its own so that its work does not slow down the measuring
// client: POSTs, over and over, from several kept-alive connections, batches
// of calls its policy denies and single calls with a body near the proxy's
// size limit, until its stdin closes. Then it prints what it sent and what
// came back as one JSON line on stdout, and exits.
//
//   node bench/proxy/flood.js --url URL --token T --tool NAME --batch N
//     [--connections N] [--big-connections N] [--big-bytes N]
// Prints "flooding" to stderr once every connection has had an answer.
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values: flags } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    tool: { type: 'string' },
    batch: { type: 'string', default: '100' }, // calls per batch
    connections: { type: 'string', default: '8' }, // each sending batches
    'big-connections': { type: 'string', default: '2' }, // each sending one large call at a time
    'big-bytes': { type: 'string', default: '0' }, // size of a large call's body (0: none)
  },
});
const batch = Number(flags.batch);
const connections = Number(flags.connections);
const bigConnections = Number(flags['big-bytes']) > 0 ? Number(flags['big-connections']) : 0;

const call = (id, args = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: flags.tool, arguments: args } });
const batchBody = Buffer.from(JSON.stringify(Array.from({ length: batch }, (_, i) => call(i + 1))));
// One call whose argument fills the body up to big-bytes.
const bigBody = (() => {
  const bytes = Number(flags['big-bytes']);
  if (!(bytes > 0)) return null;
  const skeleton = JSON.stringify(call(1, { blob: '' }));
  return Buffer.from(JSON.stringify(call(1, { blob: 'x'.repeat(Math.max(0, bytes - skeleton.length)) })));
})();

const headers = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${flags.token}`,
};

const stats = {
  batches: { sent: 0, answered: 0, calls: 0, bytes_sent: 0, statuses: {}, errors: 0 },
  big: { sent: 0, answered: 0, bytes_sent: 0, statuses: {}, errors: 0 },
  batch_size: batch, batch_bytes: batchBody.length, big_bytes: bigBody?.length ?? 0,
  seconds: 0,
};

function post(agent, body) {
  return new Promise((resolve) => {
    const req = request(flags.url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => { bytes += chunk.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes }));
      res.on('error', () => resolve({ error: true }));
    });
    req.on('error', () => resolve({ error: true }));
    req.end(body);
  });
}

let stopping = false;
let answeredConnections = 0;
const total = connections + bigConnections;
const firstAnswer = () => {
  answeredConnections += 1;
  if (answeredConnections === total) process.stderr.write('flooding\n');
};

async function loop(agent, body, into) {
  let first = true;
  while (!stopping) {
    into.sent += 1;
    into.bytes_sent += body.length;
    const answer = await post(agent, body);
    if (answer.error) {
      into.errors += 1;
    } else {
      into.answered += 1;
      into.statuses[answer.status] = (into.statuses[answer.status] ?? 0) + 1;
      if (into === stats.batches && answer.status === 200) into.calls += batch;
    }
    if (first) {
      first = false;
      firstAnswer();
    }
  }
}

const started = performance.now();
const batchAgent = new Agent({ keepAlive: true, maxSockets: connections });
const bigAgent = new Agent({ keepAlive: true, maxSockets: Math.max(1, bigConnections) });
const loops = [
  ...Array.from({ length: connections }, () => loop(batchAgent, batchBody, stats.batches)),
  ...Array.from({ length: bigConnections }, () => loop(bigAgent, bigBody, stats.big)),
];

// The parent closes stdin to stop the flood (or dies, which closes it too).
process.stdin.on('data', () => {});
process.stdin.on('end', async () => {
  stopping = true;
  stats.seconds = (performance.now() - started) / 1000;
  await Promise.all(loops);
  batchAgent.destroy();
  bigAgent.destroy();
  process.stdout.write(`${JSON.stringify(stats)}\n`);
});
