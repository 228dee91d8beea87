// The typical call every proxy benchmark sends (proxy.bench.js, profile-diff.js),
// in one place so that their figures are of the same call: 5 arguments, 3
// conditions, and 1 limit so large it never denies.
export const TOKEN = 'bench-token-0123456789abcdef';

export const POLICY = {
  version: '1',
  default: 'deny',
  tools: {
    create_refund: {
      require: [{ path: 'args.currency', op: 'in', value: ['usd', 'eur'] }],
      deny_if: [{ conditions: [{ path: 'args.amount', op: 'gt', value: 500 }, { path: 'grant.role', op: 'neq', value: 'admin' }] }],
      rate_limit: { max: 1_000_000_000, window: 'minute' },
    },
  },
};

export const BODY = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'tools/call',
  params: { name: 'create_refund', arguments: { amount: 120, currency: 'usd', charge: 'ch_123', reason: 'duplicate', notify: true } },
});

export const HEADERS = Object.freeze({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}` });
