// The Redis command layer shared by the Redis stores (./redis.js) and the
// audit stream sink (../audit-redis.js): connecting a node-redis client (plain
// or cluster), sending commands and Lua scripts routed by key on a cluster,
// giving up on a Redis that stalls (but not on one this process is too busy to
// read), and closing. It knows nothing of counters or approvals.
// Configuration and failure behaviour: ./README.md.

// Marks a store made by createRedisCounterStore or createRedisApprovalStore:
// its close() closes the client.
export const OWNS_CLIENT = Symbol('ownsClient');

export class RedisTimeoutError extends Error {
  constructor(timeoutMs, what = 'did not answer') {
    super(`Redis ${what} within ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

// Rejects with `error` after `ms`, unless cancelled (connecting and closing).
function deadlineAfter(ms, error) {
  let timer;
  const promise = new Promise((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/**
 * Closes a node-redis client (plain or cluster) within `timeoutMs`. close()
 * waits for pending replies, which a dead server never sends; past the
 * timeout, destroy() drops them and stops node-redis from reconnecting.
 */
export async function closeRedisClient(client, timeoutMs) {
  const deadline = deadlineAfter(timeoutMs, () => new RedisTimeoutError(timeoutMs));
  try {
    await Promise.race([(client.close ?? client.quit).call(client), deadline.promise]);
  } catch {
    destroyClient(client);
  } finally {
    deadline.cancel();
  }
}

function destroyClient(client) {
  try {
    (client.destroy ?? client.disconnect).call(client);
  } catch {
    // already closed
  }
}

// Whether `client` is a node-redis cluster client (createCluster()): its
// sendCommand() takes (firstKey, isReadonly, args, options), and routes the
// command to the node serving firstKey's slot.
export function isClusterClient(client) {
  return typeof client.nodeClient === 'function' && 'masters' in client;
}

// The key a command is routed by on Redis Cluster: the first key of a script
// (EVAL/EVALSHA sha numkeys key ...), none for SCRIPT (node-redis sends
// SCRIPT LOAD to every node), else the command's first argument (GET, SET, MGET).
function routingKeyOf(args) {
  const name = String(args[0]).toUpperCase();
  if (name === 'EVAL' || name === 'EVALSHA') return Number(args[2]) > 0 ? args[3] : undefined;
  if (name === 'SCRIPT') return undefined;
  return args[1];
}

// The text Redis Cluster hashes for `key` (its slot): the hash tag, the text
// between the first '{' and the next '}' when that is not empty, else the
// whole key.
export function hashTagOf(key) {
  const text = String(key);
  const open = text.indexOf('{');
  const close = open < 0 ? -1 : text.indexOf('}', open + 1);
  return close > open + 1 ? text.slice(open + 1, close) : text;
}

// CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster
// hashes keys with, one table lookup per byte.
const CRC16_TABLE = new Uint16Array(256).map((_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});
const utf8 = new TextEncoder();

/**
 * The Redis Cluster slot (0..16383) of `key`: CRC16 of its hash tag (see
 * hashTagOf), in UTF-8, modulo 16384, as CLUSTER KEYSLOT answers. Keys of one
 * slot may meet in one script.
 */
export function slotOf(key) {
  let crc = 0;
  for (const byte of utf8.encode(hashTagOf(key))) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc & 0x3fff;
}

// How often and when Redis last answered, per client and per connection
// ("channel"): a plain client has one connection, so one channel; a cluster
// client one per node, here told apart by slot (keys of one slot share a node
// and its connection; finer than a node, which only means less evidence of
// life, never more). By slot, not by hash tag: tags come from grant ids and
// counter keys (argument values), so a client could grow a map of tags
// without end; there are 16 384 slots. Shared by every RedisCommands over the
// same client.
const answerLogs = new WeakMap(); // client -> Map<channel, { count, at: performance.now() }>

function answersOf(client) {
  let answers = answerLogs.get(client);
  if (!answers) {
    answers = new Map();
    answerLogs.set(client, answers);
  }
  return answers;
}

// An answer from Redis, an error reply (NOSCRIPT, WRONGTYPE...) included:
// proof the connection is alive. A closed socket or an aborted command is not.
// node-redis is loaded lazily (below); its ErrorReply class is looked up as
// soon as this module loads, when node-redis is there at all (a store given
// a client has it). Until then an error counts as no answer: the cautious side.
let ErrorReply;
import('redis').then((redis) => { ErrorReply = redis.ErrorReply; }, () => {});
const isAnswer = (error) => ErrorReply !== undefined && error instanceof ErrorReply;

export function checkMaxWait(maxWaitMs, owner) {
  if (maxWaitMs !== undefined && !(Number.isFinite(maxWaitMs) && maxWaitMs > 0)) {
    throw new TypeError(`${owner} \`maxWaitMs\` must be a positive number`);
  }
}

// How many loop turns in a row must read no answer from Redis, besides
// timeoutMs of silence, before a command gives up (see RedisCommands.command).
// A healthy Redis answers a burst's commands every turn or two: written in one
// turn's check phase, read in the next poll phase or the one after.
const QUIET_TURNS = 3;

/** Default of `maxWaitMs`: how long any one operation may wait, even for a Redis that is answering others. */
export const DEFAULT_MAX_WAIT_MS = 10_000;

/**
 * Sends commands and Lua scripts through a plain or a cluster node-redis
 * client (routed by key on a cluster), and gives up on a Redis that stalls.
 * Shared by the counter and approval stores and the audit stream sink
 * (../audit-redis.js), so all of them fail the same way.
 *
 * A command fails when Redis has said nothing on its connection for
 * `timeoutMs` while it waited (down, stalled, paused, partitioned), or when
 * the operation's deadline (`maxWaitMs` after deadline()) passes. It does not
 * fail because this process was too busy to read the answer or to write the
 * command (issue #12: under a burst of 300 calls a plain timer denied most of
 * them with store_error, though Redis had answered; details in command()).
 */
export class RedisCommands {
  #client;
  #timeoutMs;
  #maxWaitMs;
  #cluster;
  #answers;
  #shas = new Map(); // script -> Promise<sha1>, loaded once per store

  constructor(client, timeoutMs, maxWaitMs = Math.max(DEFAULT_MAX_WAIT_MS, timeoutMs)) {
    checkMaxWait(maxWaitMs, 'RedisCommands');
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    this.#maxWaitMs = maxWaitMs;
    this.#cluster = isClusterClient(client);
    this.#answers = answersOf(client);
  }

  /** Whether the client is a cluster client (createCluster()). */
  get cluster() {
    return this.#cluster;
  }

  /**
   * The deadline (performance.now() time) of an operation starting now:
   * `maxWaitMs` from now, for all its round trips together.
   */
  deadline() {
    return performance.now() + this.#maxWaitMs;
  }

  /** Loads scripts now instead of on their first use. */
  async load(scripts) {
    const deadline = this.deadline();
    await Promise.all(scripts.map((script) => this.#sha(script, deadline)));
  }

  // EVALSHA, and EVAL when Redis lost the script (restart, failover, SCRIPT
  // FLUSH); EVAL caches it again for the next EVALSHA.
  async eval(script, keys, args, deadline, onLateReply) {
    const sha = await this.#sha(script, deadline);
    try {
      return await this.command(['EVALSHA', sha, String(keys.length), ...keys, ...args], deadline, onLateReply);
    } catch (error) {
      if (!String(error?.message).startsWith('NOSCRIPT')) throw error;
      return this.command(['EVAL', script, String(keys.length), ...keys, ...args], deadline, onLateReply);
    }
  }

  #sha(script, deadline) {
    let loading = this.#shas.get(script);
    if (!loading) {
      loading = this.command(['SCRIPT', 'LOAD', script], deadline);
      this.#shas.set(script, loading);
      loading.catch(() => this.#shas.delete(script)); // retried on the next call
    }
    return loading;
  }

  // One command: rejected once Redis has been silent on its connection for
  // timeoutMs, or at `deadline`. A command node-redis has not written yet (it
  // queues them while reconnecting) is then aborted, so it never runs late;
  // one already written may still run, and onLateReply sees its reply.
  command(args, deadline, onLateReply) {
    const sentAt = performance.now();
    if (deadline - sentAt <= 0) return Promise.reject(new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
    const routingKey = this.#cluster ? routingKeyOf(args) : undefined;
    const channel = routingKey === undefined ? -1 : slotOf(routingKey);
    const abort = new AbortController();
    const options = { abortSignal: abort.signal };
    // node-redis writes what it was given in a setImmediate (the loop's check
    // phase), maybe long after sendCommand() when the loop is busy. Silence
    // counts from then: one more setImmediate, queued after node-redis's.
    let writtenAt = Infinity;
    const reply = Promise.resolve().then(() => {
      const sending = this.#cluster
        ? this.#client.sendCommand(routingKey, false, args, options)
        : this.#client.sendCommand(args, options);
      setImmediate(() => { writtenAt = performance.now(); });
      return sending;
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer;
      const heard = () => {
        const log = this.#answers.get(channel);
        if (log) {
          log.count += 1;
          log.at = performance.now();
        } else {
          this.#answers.set(channel, { count: 1, at: performance.now() });
        }
      };
      reply.then((value) => {
        heard();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }, (error) => {
        if (isAnswer(error)) heard();
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      });
      const giveUp = (error) => {
        settled = true;
        abort.abort();
        reply.then(onLateReply ?? (() => {}), () => {});
        reject(error);
      };
      // Redis counts as silent only when both hold: no answer on this
      // connection for timeoutMs, and none read in QUIET_TURNS loop turns in a
      // row. Wall time alone misjudges a busy process: a timer runs before the
      // loop polls its sockets, maybe long after it was due, while answers sit
      // unread; and node-redis writes at most one socket buffer of commands
      // per turn (it waits for 'drain'), so under a burst a command may reach
      // Redis many turns after it was sent. Turns alone misjudge an idle
      // process, whose turns take microseconds. So, once the timer fires: look
      // after the next poll phase (setImmediate), again for each quiet turn,
      // and re-arm the timer as soon as Redis answers anything.
      const check = () => {
        let since = performance.now(); // the next poll phase begins after this
        let before = this.#answers.get(channel)?.count ?? 0;
        let quietTurns = 0;
        const look = () => setImmediate(() => {
          if (settled) return;
          const now = performance.now();
          if (now >= deadline) return giveUp(new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
          const log = this.#answers.get(channel);
          const count = log?.count ?? 0;
          // Silence Redis has certainly kept: from its last answer read (or
          // from the write) until the poll phase that just read nothing.
          const silentFor = count > before ? 0 : Math.max(0, since - Math.max(writtenAt, log?.at ?? -Infinity));
          if (silentFor < this.#timeoutMs) {
            timer = setTimeout(check, Math.max(1, Math.min(this.#timeoutMs - silentFor, deadline - now)));
            return;
          }
          quietTurns += 1;
          if (quietTurns >= QUIET_TURNS) return giveUp(new RedisTimeoutError(this.#timeoutMs));
          since = now;
          before = count;
          look();
        });
        look();
      };
      timer = setTimeout(check, Math.min(this.#timeoutMs, deadline - sentAt));
    });
  }
}

// node-redis stops writing queued commands once the socket's buffer holds
// writableHighWaterMark bytes, and goes on after 'drain', one loop turn later.
// With Node's 16 KiB, a burst of 1 000 calls reached Redis 45 scripts per
// turn, over twenty turns of a loop busy with the requests themselves; 1 MiB
// writes such a burst at once (the bytes are queued for the socket either way).
const SOCKET_DEFAULTS = { writableHighWaterMark: 1 << 20 };

// node-redis is an optional peer dependency of the package: an installed
// toolgate that never uses Redis does not carry it, so it is imported only
// here, when a client is made, and its absence says how to add it.
async function loadNodeRedis() {
  try {
    return await import('redis');
  } catch (error) {
    if (error?.code === 'ERR_MODULE_NOT_FOUND' && /['"]redis['"]/.test(error.message)) {
      throw new Error('the Redis stores need the node-redis client, which is not installed: run `npm install redis` where toolgate is installed', { cause: error });
    }
    throw error;
  }
}

/**
 * A node-redis client for `url`, connected within `connectTimeoutMs`, its
 * 'error' events sent to `onError` (node-redis would crash the process on an
 * 'error' event nobody listens to). With `cluster`, a cluster client
 * (createCluster(), clientOptions are its options) that finds the other nodes
 * from `url` (or from clientOptions.rootNodes). Close it with closeRedisClient.
 */
export async function connectRedisClient({ url, cluster = false, connectTimeoutMs = 5000, clientOptions = {}, onError }) {
  const { createClient, createCluster } = await loadNodeRedis();
  const client = cluster === true
    ? createCluster({
      ...clientOptions,
      rootNodes: clientOptions.rootNodes ?? [{ url }],
      defaults: { ...clientOptions.defaults, socket: { ...SOCKET_DEFAULTS, ...clientOptions.defaults?.socket } },
    })
    : createClient({ ...clientOptions, url, socket: { ...SOCKET_DEFAULTS, ...clientOptions.socket } });
  client.on('error', onError);
  const deadline = deadlineAfter(connectTimeoutMs, () => new Error(`could not connect to Redis at ${url} within ${connectTimeoutMs} ms`));
  const connecting = client.connect();
  connecting.catch(() => {}); // settled below, or moot once destroyed
  try {
    await Promise.race([connecting, deadline.promise]);
  } catch (error) {
    // node-redis would keep reconnecting in the background.
    destroyClient(client);
    throw error;
  } finally {
    deadline.cancel();
  }
  return client;
}
