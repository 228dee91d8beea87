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

// One command in flight: what settles its promise, when it was written, how
// its watch stands (RedisCommands, below). It is also the command's abort
// signal for node-redis, which reads `aborted` and adds, then removes, one
// 'abort' listener (a queued command is dropped from the write queue when it
// fires): a plain object where an AbortController and its EventTarget cost
// about 10 µs of CPU per command, for an abort that happens only on a timeout.
class InFlight {
  aborted = false;
  settled = false;
  writtenAt = Infinity; // performance.now() of the check phase node-redis wrote it in
  suspect = false; // past checkAt: being looked at turn by turn
  since = 0; // suspect: when the current look began
  before = 0; // suspect: answers counted on the channel by then
  quietTurns = 0;
  #listener = null;

  constructor(channel, deadline, checkAt, onLateReply, resolve, reject) {
    this.channel = channel;
    this.deadline = deadline;
    this.checkAt = checkAt; // when to look whether Redis has been silent
    this.onLateReply = onLateReply;
    this.resolve = resolve;
    this.reject = reject;
  }

  addEventListener(type, listener) {
    if (type === 'abort') this.#listener = listener;
  }

  removeEventListener(type, listener) {
    if (type === 'abort' && this.#listener === listener) this.#listener = null;
  }

  abort() {
    this.aborted = true;
    const listener = this.#listener;
    this.#listener = null;
    listener?.call(this, { type: 'abort' });
  }
}

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
 *
 * The watch is per instance, not per command (issue #17: a timer, an
 * AbortController and a setImmediate per command, with node-redis's own
 * timeout signal, were 40 % of the store's CPU per call): one timer, due
 * when the oldest unchecked command is, looks over every command in flight;
 * one setImmediate per loop turn that sent commands notes when node-redis
 * wrote them.
 */
export class RedisCommands {
  #client;
  #timeoutMs;
  #maxWaitMs;
  #cluster;
  #answers;
  #shas = new Map(); // script -> Promise<sha1>, loaded once per store
  #loadedShas = new Map(); // script -> sha1, once loaded: no await on the way to EVALSHA
  #inFlight = new Set(); // InFlight, in the order sent
  #unwritten = []; // sent in this loop turn, written in its check phase
  #noting = false; // a setImmediate to note the write time is queued
  #timer = null;
  #timerAt = Infinity;
  #looking = false; // a look (setImmediate) is queued

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

  /** How many commands wait for their answer (or for being given up on). */
  get inFlight() {
    return this.#inFlight.size;
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
  eval(script, keys, args, deadline, onLateReply) {
    const sha = this.#loadedShas.get(script);
    if (sha === undefined) return this.#sha(script, deadline).then((loaded) => this.#evalSha(loaded, script, keys, args, deadline, onLateReply));
    return this.#evalSha(sha, script, keys, args, deadline, onLateReply);
  }

  // Not an async function: its await and return added promise jobs to every
  // script's wait for its reply (issue #17); one reaction, for the fallback.
  #evalSha(sha, script, keys, args, deadline, onLateReply) {
    return this.command(['EVALSHA', sha, String(keys.length), ...keys, ...args], deadline, onLateReply).then(undefined, (error) => {
      if (!String(error?.message).startsWith('NOSCRIPT')) throw error;
      return this.command(['EVAL', script, String(keys.length), ...keys, ...args], deadline, onLateReply);
    });
  }

  #sha(script, deadline) {
    let loading = this.#shas.get(script);
    if (!loading) {
      loading = this.command(['SCRIPT', 'LOAD', script], deadline);
      this.#shas.set(script, loading);
      loading.then((sha) => this.#loadedShas.set(script, sha), () => this.#shas.delete(script)); // retried on the next call
    }
    return loading;
  }

  // One command: rejected once Redis has been silent on its connection for
  // timeoutMs, or at `deadline`. A command node-redis has not written yet (it
  // queues them while reconnecting) is then aborted, so it never runs late;
  // one already written may still run, and onLateReply sees its reply.
  //
  // Redis counts as silent only when both hold: no answer on this connection
  // for timeoutMs, and none read in QUIET_TURNS loop turns in a row. Wall time
  // alone misjudges a busy process: a timer runs before the loop polls its
  // sockets, maybe long after it was due, while answers sit unread; and
  // node-redis writes at most one socket buffer of commands per turn (it
  // waits for 'drain'), so under a burst a command may reach Redis many turns
  // after it was sent. Turns alone misjudge an idle process, whose turns take
  // microseconds. So, once a command's time is up (#watch): look after the
  // next poll phase (setImmediate), again for each quiet turn, and give it
  // more time as soon as Redis answers anything.
  command(args, deadline, onLateReply) {
    const sentAt = performance.now();
    if (deadline - sentAt <= 0) return Promise.reject(new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
    const routingKey = this.#cluster ? routingKeyOf(args) : undefined;
    const channel = routingKey === undefined ? -1 : slotOf(routingKey);
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const command = new InFlight(channel, deadline, sentAt + Math.min(this.#timeoutMs, deadline - sentAt), onLateReply, resolve, reject);
    // `timeout: undefined` turns off node-redis's own per-command timeout
    // (commandOptions.timeout, 5 s by default since node-redis 6): the watch
    // here is the one that decides, and node-redis's costs an AbortSignal and
    // a timer per command that fires seconds later, answered or not.
    const options = { abortSignal: command, timeout: undefined };
    let sending;
    try {
      sending = this.#cluster
        ? this.#client.sendCommand(routingKey, false, args, options)
        : this.#client.sendCommand(args, options);
    } catch (error) {
      sending = Promise.reject(error);
    }
    Promise.resolve(sending).then((value) => this.#answered(command, value), (error) => this.#failed(command, error));
    this.#inFlight.add(command);
    // node-redis writes what it was given in a setImmediate (the loop's check
    // phase), maybe long after sendCommand() when the loop is busy. Silence
    // counts from then: one setImmediate per turn, queued after node-redis's.
    this.#unwritten.push(command);
    if (!this.#noting) {
      this.#noting = true;
      setImmediate(this.#noteWritten);
    }
    this.#arm(command.checkAt);
    return promise;
  }

  #noteWritten = () => {
    this.#noting = false;
    const now = performance.now();
    for (const command of this.#unwritten) command.writtenAt = now;
    this.#unwritten.length = 0;
  };

  // An answer from Redis, an error reply included: the connection is alive.
  #heard(channel) {
    const log = this.#answers.get(channel);
    if (log) {
      log.count += 1;
      log.at = performance.now();
    } else {
      this.#answers.set(channel, { count: 1, at: performance.now() });
    }
  }

  #answered(command, value) {
    this.#heard(command.channel);
    if (command.settled) {
      // Given up on, and run all the same: the caller may need to undo it.
      if (command.onLateReply) {
        try {
          command.onLateReply(value);
        } catch {
          // best effort: the call it belonged to was already denied
        }
      }
      return;
    }
    command.settled = true;
    this.#inFlight.delete(command);
    command.resolve(value);
  }

  #failed(command, error) {
    if (isAnswer(error)) this.#heard(command.channel);
    if (command.settled) return;
    command.settled = true;
    this.#inFlight.delete(command);
    command.reject(error);
  }

  #giveUp(command, error) {
    command.settled = true;
    this.#inFlight.delete(command);
    command.abort(); // node-redis drops it if not written yet
    command.reject(error);
  }

  // The one timer, due at the earliest checkAt of the commands in flight
  // (kept, not moved, when a later command comes: usually the only call per
  // command is this comparison). Unref'd: a command in flight has node-redis's
  // socket or reconnect timer keeping the process up, and a timer left armed
  // after the last answer must not hold it for up to timeoutMs.
  #arm(at) {
    if (this.#timer !== null) {
      if (this.#timerAt <= at) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(1, at - performance.now()));
    this.#timer.unref?.();
  }

  #onTimer = () => {
    this.#timer = null;
    this.#timerAt = Infinity;
    this.#watch(performance.now());
  };

  // Marks the commands whose checkAt has come as suspects (looked at after
  // the next poll phase), and re-arms the timer for the others.
  #watch(now) {
    let next = Infinity;
    let suspects = false;
    for (const command of this.#inFlight) {
      if (command.suspect) {
        suspects = true;
      } else if (command.checkAt <= now) {
        command.suspect = true;
        command.since = now; // the next poll phase begins after this
        command.before = this.#answers.get(command.channel)?.count ?? 0;
        command.quietTurns = 0;
        suspects = true;
      } else if (command.checkAt < next) {
        next = command.checkAt;
      }
    }
    if (next !== Infinity) this.#arm(next);
    if (suspects && !this.#looking) {
      this.#looking = true;
      setImmediate(this.#look);
    }
  }

  #look = () => {
    this.#looking = false;
    const now = performance.now();
    for (const command of this.#inFlight) {
      if (!command.suspect) continue;
      if (now >= command.deadline) {
        this.#giveUp(command, new RedisTimeoutError(this.#maxWaitMs, 'did not answer this operation'));
        continue;
      }
      const log = this.#answers.get(command.channel);
      const count = log?.count ?? 0;
      // Silence Redis has certainly kept: from its last answer read (or from
      // the write) until the poll phase that just read nothing.
      const silentFor = count > command.before ? 0 : Math.max(0, command.since - Math.max(command.writtenAt, log?.at ?? -Infinity));
      if (silentFor < this.#timeoutMs) {
        command.suspect = false;
        command.checkAt = now + Math.max(1, Math.min(this.#timeoutMs - silentFor, command.deadline - now));
        continue;
      }
      command.quietTurns += 1;
      if (command.quietTurns >= QUIET_TURNS) {
        this.#giveUp(command, new RedisTimeoutError(this.#timeoutMs));
        continue;
      }
      command.since = now;
      command.before = count;
    }
    this.#watch(now);
  };
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
