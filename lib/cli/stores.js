// The counter and approval stores `toolgate serve` and `toolgate stdio` open
// from --store and --redis-cluster: memory (the default), one Redis, or a
// Redis Cluster reached through one of its nodes.
import { ConfigError } from '../../worker/node.js';

export const STORE_USAGE = `  --store memory|redis://HOST:PORT
                           where counters and approvals live (default memory)
  --redis-cluster          the --store URL is one node of a Redis Cluster: the
                           other nodes are found from it, and each grant's
                           counters go to the node of its hash slot`;

export const STORE_OPTIONS = {
  store: { type: 'string' },
  'redis-cluster': { type: 'boolean' },
};

// A flag that cannot work (`usage`: the command line is wrong, exit 2 for
// stdio) or a store that does not answer (exit 1).
const flagError = (message) => Object.assign(new ConfigError(message), { usage: true });

// node-redis reports every failed reconnect (several a second while Redis is
// down): the same message is written once per REPEAT_MS.
const REPEAT_MS = 10_000;
function redisWarnings(write) {
  const last = new Map();
  return (error) => {
    const message = error?.message ?? String(error);
    const now = Date.now();
    if (now - (last.get(message) ?? -Infinity) < REPEAT_MS) return;
    last.set(message, now);
    write(`Redis: ${message}`);
  };
}

/**
 * { counters, approvals, redis: { url, cluster } | null, close() } for the
 * parsed --store and --redis-cluster flags. counters and approvals are
 * undefined for memory (the caller makes its memory stores). A URL that is not
 * Redis, or a Redis that does not answer, is a ConfigError. `warn` gets the
 * Redis clients' connection errors while they run.
 */
export async function openStores({ store = 'memory', 'redis-cluster': cluster = false } = {}, { warn = (message) => process.stderr.write(`toolgate: ${message}\n`) } = {}) {
  if (store === 'memory') {
    if (cluster) throw flagError('--redis-cluster needs --store redis://HOST:PORT (a node of the cluster)');
    return { redis: null, close: async () => {} };
  }
  if (!/^rediss?:\/\//.test(store)) throw flagError(`--store must be "memory" or a redis:// URL, not ${JSON.stringify(store)}`);
  const { createRedisApprovalStore, createRedisCounterStore } = await import('../../worker/stores/redis.js');
  const what = cluster ? 'the Redis Cluster' : 'Redis';
  const onError = redisWarnings(warn);
  const open = (create) => create({ url: store, cluster, onError }).catch((error) => {
    throw new ConfigError(`--store: cannot use ${what} at ${store}: ${error?.message ?? error}`);
  });
  const counters = await open(createRedisCounterStore);
  let approvals;
  try {
    approvals = await open(createRedisApprovalStore);
  } catch (error) {
    await counters.close();
    throw error;
  }
  return {
    counters,
    approvals,
    redis: { url: store, cluster },
    close: async () => {
      await Promise.all([counters.close(), approvals.close()]);
    },
  };
}
