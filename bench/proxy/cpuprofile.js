// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by
// where the code lives (toolgate, @hono/node-server, undici/fetch, Node, ...).
import { readFileSync } from 'node:fs';

const CATEGORIES = [
  ['(idle)', (url, name) => name === '(idle)'],
  ['(garbage collector)', (url, name) => name === '(garbage collector)'],
  ['(program: V8/native, not JS)', (url, name) => name === '(program)' || name === '(root)'],
  ['toolgate wasm core and façade (wasm/)', (url) => /^file:.*\/wasm\//.test(url) || url.startsWith('wasm://')],
  ['metrics (worker/metrics.js, prom-client)', (url) => /^file:.*\/worker\/metrics\.js$/.test(url) || /node_modules\/prom-client\//.test(url)],
  ['toolgate worker/ (handler, gate, audit, grants)', (url) => /^file:.*\/worker\/(?!stores\/)/.test(url)],
  ['toolgate worker/stores/redis.js', (url) => /^file:.*\/worker\/stores\//.test(url)],
  ['toolgate lib/, bin/', (url) => /^file:.*\/(lib|bin)\//.test(url) && !/node_modules/.test(url)],
  ['node-redis (@redis/client)', (url) => /node_modules\/(@redis|redis)\//.test(url)],
  ['@hono/node-server', (url) => /node_modules\/@hono\//.test(url)],
  ['fetch (undici, bundled in Node)', (url) => /undici/.test(url)],
  ['Node web streams', (url) => /internal\/webstreams/.test(url)],
  ['Node http/net/streams', (url) => /^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net|js_stream))/.test(url)],
  ['Node structured clone / transferables (web streams, AbortSignal)', (url) => /^node:internal\/(worker\/js_transferable|abort_controller|event_target)/.test(url)],
  ['Node crypto (webcrypto sha256)', (url) => /^node:(internal\/)?crypto/.test(url)],
  ['Node fs (audit file)', (url) => /^node:(internal\/)?fs/.test(url)],
  ['native (no JS source: syscalls, string encoding, ...)', (url, name) => url === '' && !name.startsWith('(')],
  ['other Node internals', (url) => url.startsWith('node:')],
  ['other', () => true],
];

const isToolgate = (url) => /^file:/.test(url) && /\/(worker|wasm|lib|bin)\//.test(url) && !/node_modules/.test(url);

/**
 * { total_ms, busy_ms, functions: [{name, where, self_ms, share}] (top by self time),
 *   categories: [{category, self_ms, share}], toolgate_inclusive: [{name, where, ms, share}]
 *   (toolgate's own functions by time including what they call, synchronous parts only) }
 */
export function summariseProfile(path, { top = 15 } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const totalUs = profile.endTime - profile.startTime;
  const samples = profile.samples.length || 1;
  const byFunction = new Map();
  const byCategory = new Map();
  const parents = new Map();
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const whereOf = (callFrame) => (callFrame.url
    ? `${callFrame.url.replace(/^file:\/\/.*?\/(node_modules|worker|wasm|lib|bin)\//, '$1/')}:${callFrame.lineNumber + 1}` : '');
  const inclusive = new Map();
  for (const node of profile.nodes) {
    if (!node.hitCount) continue;
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parents.get(id)) {
      const { callFrame } = nodes.get(id);
      if (!isToolgate(callFrame.url)) continue;
      const key = `${callFrame.functionName || '(anonymous)'} ${whereOf(callFrame)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, { name: callFrame.functionName || '(anonymous)', where: whereOf(callFrame), hits: (inclusive.get(key)?.hits ?? 0) + node.hitCount });
    }
  }
  for (const node of profile.nodes) {
    if (!node.hitCount) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const ms = (node.hitCount / samples) * totalUs / 1000;
    const where = whereOf({ url, lineNumber });
    const key = `${name} ${where}`;
    byFunction.set(key, { name, where, self_ms: (byFunction.get(key)?.self_ms ?? 0) + ms });
    const category = CATEGORIES.find(([, test]) => test(url, name))[0];
    byCategory.set(category, (byCategory.get(category) ?? 0) + ms);
  }
  const busyMs = [...byCategory].filter(([c]) => c !== '(idle)').reduce((sum, [, ms]) => sum + ms, 0);
  const share = (ms) => ms / busyMs;
  return {
    total_ms: totalUs / 1000,
    busy_ms: busyMs,
    functions: [...byFunction.values()].filter((f) => f.name !== '(idle)').sort((a, b) => b.self_ms - a.self_ms)
      .slice(0, top).map((f) => ({ ...f, share: share(f.self_ms) })),
    toolgate_inclusive: [...inclusive.values()].map(({ name, where, hits }) => ({ name, where, ms: (hits / samples) * totalUs / 1000 }))
      .sort((a, b) => b.ms - a.ms).slice(0, top).map((f) => ({ ...f, share: share(f.ms) })),
    categories: [...byCategory].filter(([c]) => c !== '(idle)').sort((a, b) => b[1] - a[1])
      .map(([category, ms]) => ({ category, self_ms: ms, share: share(ms) })),
  };
}
