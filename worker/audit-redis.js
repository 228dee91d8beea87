// RedisStreamAuditSink: audit events appended to a Redis stream (XADD), for
// several proxy instances writing one log that consumers read with XRANGE,
// XREAD or consumer groups. The sink interface: ./audit.js.
//
// Each event is one stream entry with one field, `event`, holding the event's
// JSON (the line ./audit.js writes, without the newline): the event's shape
// stays the proxy's, and a reader parses one field. The stream is trimmed with
// MAXLEN ~ (approximate: Redis drops whole nodes, cheaply, so it holds at
// least maxLen entries and a little more). On Redis Cluster (a createCluster()
// client) the stream is one key, so every entry goes to its slot's master.
import { eventLine } from './audit.js';
import { RedisCommands } from './stores/redis-commands.js';

export class RedisStreamAuditSink {
  #redis;
  #stream;
  #maxLen;

  /**
   * `client`: a connected node-redis client (v5 or later; createClient() or
   * createCluster()), owned (and closed) by the caller. `stream`: the
   * stream's key. `maxLen`: about how many events the stream keeps. `timeoutMs`: how long one write waits for Redis before
   * rejecting (longer than the stores' default: an audit write is not on the
   * decision's path, but a dead Redis must not hold writes forever).
   */
  constructor({ client, stream = 'toolgate:audit', maxLen = 100_000, timeoutMs = 1000 } = {}) {
    if (!client || typeof client.sendCommand !== 'function') {
      throw new TypeError('RedisStreamAuditSink needs `client`, a connected node-redis client');
    }
    if (typeof stream !== 'string' || stream === '') throw new TypeError('RedisStreamAuditSink `stream` must be a non-empty string');
    if (!(Number.isSafeInteger(maxLen) && maxLen > 0)) throw new TypeError('RedisStreamAuditSink `maxLen` must be a positive integer');
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError('RedisStreamAuditSink `timeoutMs` must be a positive number');
    this.#redis = new RedisCommands(client, timeoutMs);
    this.#stream = stream;
    this.#maxLen = maxLen;
  }

  get stream() {
    return this.#stream;
  }

  /**
   * Appends the event; resolves to the entry's id. Events keep the order of the
   * write() calls: node-redis sends one client's commands in order, and Redis
   * runs them in order. Rejects on an error or after timeoutMs; a command not
   * yet sent by then is dropped, one already sent may still be appended.
   */
  async write(event) {
    const json = eventLine(event).slice(0, -1);
    const args = ['XADD', this.#stream, 'MAXLEN', '~', String(this.#maxLen), '*', 'event', json];
    return this.#redis.command(args, this.#redis.deadline());
  }

  // The client is the caller's: nothing to close here.
  async close() {}
}
