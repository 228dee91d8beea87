// W3C trace context through the proxy on Node (startProxy over real HTTP, a
// recording upstream): the client's traceparent goes upstream in the header
// and in the MCP request's _meta; an invalid one is dropped; with an
// OpenTelemetry SDK registered (@opentelemetry/sdk-trace-base, in memory)
// toolgate's own span is the child of the client's and the server's parent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { startProxy } from '../../worker/node.js';
import { formatTraceparent, parseTraceparent } from '../../worker/trace-context.js';
import { echoResults, postRaw, startFakeUpstream, tempFile } from './proxy-helpers.js';

const POLICY = { version: '1', default: 'deny', tools: { run: {} } };
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const CLIENT_PARENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;
const call = (id, name = 'run', extra = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {}, ...extra } });

let upstream;
let policyPath;
before(async () => {
  upstream = await startFakeUpstream((req, body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echoResults(body)));
  });
  policyPath = await tempFile('trace-policy.json', POLICY);
});
after(() => upstream?.stop());

const lastUpstream = () => {
  const request = upstream.requests.at(-1);
  return { headers: request.headers, body: JSON.parse(request.body) };
};

describe('without a tracer: the client\'s trace context is passed on', () => {
  let proxy;
  before(async () => {
    proxy = await startProxy({ servers: { default: { upstream: upstream.url, policy: policyPath } }, port: 0, log: () => {}, audit: { write: async () => {} } });
  });
  after(() => proxy?.close());

  test('the traceparent header goes upstream as the header and in _meta, with tracestate', async () => {
    const answer = await postRaw(`${proxy.url}/mcp`, call(1), { headers: { traceparent: CLIENT_PARENT, tracestate: 'vendor=abc' } });
    assert.equal(answer.status, 200, answer.text);
    const sent = lastUpstream();
    assert.equal(sent.headers.traceparent, CLIENT_PARENT);
    assert.equal(sent.headers.tracestate, 'vendor=abc');
    assert.equal(sent.body.params._meta.traceparent, CLIENT_PARENT);
    assert.equal(sent.body.params._meta.tracestate, 'vendor=abc');
  });

  test('a traceparent in the request\'s _meta goes upstream in the header too; the client\'s other _meta stays', async () => {
    await postRaw(`${proxy.url}/mcp`, call(2, 'run', { _meta: { traceparent: CLIENT_PARENT, progressToken: 7 } }));
    const sent = lastUpstream();
    assert.equal(sent.headers.traceparent, CLIENT_PARENT);
    assert.deepEqual(sent.body.params._meta, { traceparent: CLIENT_PARENT, progressToken: 7 });
  });

  test('an invalid traceparent is dropped, not passed on', async () => {
    for (const bad of [`00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, `00-${TRACE_ID}-${'0'.repeat(16)}-01`, `ff-${TRACE_ID}-${CLIENT_SPAN}-01`,
      `00-${TRACE_ID.toUpperCase()}-${CLIENT_SPAN}-01`, `00-${TRACE_ID}-${CLIENT_SPAN}-01-extra`, 'garbage', `00-${TRACE_ID}-${CLIENT_SPAN}`]) {
      await postRaw(`${proxy.url}/mcp`, call(3), { headers: { traceparent: bad } });
      const sent = lastUpstream();
      assert.equal(sent.headers.traceparent, undefined, bad);
      assert.equal(sent.body.params._meta, undefined, bad);
    }
  });

  test('property: whatever traceparent a client sends, what goes upstream is absent or well-formed version 00', () => {
    const hex = '0123456789abcdefABCDEF-xz ';
    for (let i = 0; i < 5000; i += 1) {
      let value = CLIENT_PARENT.split('');
      const edits = 1 + (i % 4);
      for (let e = 0; e < edits; e += 1) {
        const at = randomBytes(1)[0] % (value.length + 1);
        const kind = randomBytes(1)[0] % 3;
        const char = hex[randomBytes(1)[0] % hex.length];
        if (kind === 0) value[at] = char;
        else if (kind === 1) value.splice(at, 0, char);
        else value.splice(at, 1);
      }
      value = value.join('');
      const parsed = parseTraceparent(value);
      if (parsed === null) continue;
      const out = formatTraceparent(parsed);
      assert.match(out, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, value);
      assert.notEqual(parsed.traceId, '0'.repeat(32));
      assert.notEqual(parsed.spanId, '0'.repeat(16));
    }
  });
});

describe('with an OpenTelemetry SDK registered: toolgate\'s own span', () => {
  let proxy;
  const exporter = new InMemorySpanExporter();
  before(async () => {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    proxy = await startProxy({ servers: { default: { upstream: upstream.url, policy: policyPath } }, port: 0, log: () => {}, audit: { write: async () => {} }, tracing: true });
  });
  after(async () => {
    await proxy?.close();
    trace.disable();
  });

  const parentOf = (span) => span.parentSpanContext?.spanId ?? span.parentSpanId;

  test('a forwarded call: the span is the client\'s child and the server\'s parent', async () => {
    exporter.reset();
    await postRaw(`${proxy.url}/mcp`, call(10), { headers: { traceparent: CLIENT_PARENT } });
    const sent = lastUpstream();
    // The span ends when the answer settles the call: wait on the exporter.
    for (let i = 0; exporter.getFinishedSpans().length === 0; i += 1) await new Promise((resolve) => setImmediate(resolve));
    const [span] = exporter.getFinishedSpans();
    const own = span.spanContext();
    assert.equal(own.traceId, TRACE_ID);
    assert.equal(parentOf(span), CLIENT_SPAN);
    assert.equal(sent.headers.traceparent, `00-${TRACE_ID}-${own.spanId}-01`);
    assert.equal(sent.body.params._meta.traceparent, sent.headers.traceparent);
    assert.equal(span.name, 'tools/call run');
    assert.equal(span.attributes['toolgate.decision'], 'allow');
    assert.equal(span.attributes['toolgate.forwarded'], true);
    assert.equal(span.attributes['toolgate.outcome'], 'result');
  });

  test('a refused call: a span with the decision, nothing forwarded', async () => {
    exporter.reset();
    const before = upstream.requests.length;
    const answer = await postRaw(`${proxy.url}/mcp`, call(11, 'delete'), { headers: { traceparent: CLIENT_PARENT } });
    assert.equal(answer.json.result.structuredContent.code, 'default_deny');
    assert.equal(upstream.requests.length, before);
    const [span] = exporter.getFinishedSpans();
    assert.equal(parentOf(span), CLIENT_SPAN);
    assert.equal(span.attributes['toolgate.decision'], 'deny');
    assert.equal(span.attributes['toolgate.code'], 'default_deny');
    assert.equal(span.attributes['toolgate.forwarded'], false);
  });
});
