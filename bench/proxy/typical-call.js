// The typical call every proxy benchmark sends (proxy.bench.js, profile-diff.js),
// in one place so that their figures are of the same call: 5 arguments, 3
// conditions, and 1 limit so large it never denies.
import { typicalCall, typicalPolicy } from '../js/policies.js';

export const TOKEN = 'bench-token-0123456789abcdef';

// The JS benchmarks' typical policy and call (bench/js/policies.js), sent as a
// tools/call: the proxy's figures and the engine's are of the same decision.
export const POLICY = typicalPolicy;

export const BODY = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'tools/call',
  params: { name: typicalCall.tool, arguments: typicalCall.arguments },
});

export const HEADERS = Object.freeze({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` });
