// A throwaway redis-server for tests: the Debian package's binary on a free
// port on 127.0.0.1, without persistence, in a temporary directory. stop()
// ends it; a watchdog shell ends it too if the test process dies first.
//
//   const server = await startRedis(); // { port, url, stop() }
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export const REDIS_SERVER = '/usr/bin/redis-server';

// A free TCP port on 127.0.0.1 (free when asked; redis-server may still lose a race for it).
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

// The process id of the Redis that answers on `port` (INFO server), or null
// when none answers (yet). The port was free when picked, but another process
// (another suite's redis-server, on a machine running several) may have bound
// it before ours did: a reply alone does not say the server is ours.
function serverPid(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (pid) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(2000, () => done(null));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (data) => {
      reply += data;
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (reply.startsWith('-')) done(null); // e.g. -LOADING: not ready yet
      else if (bulk && Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1])) done(Number(/process_id:(\d+)/.exec(reply)?.[1] ?? 0));
    });
    socket.on('error', () => done(null));
  });
}

// The shell stops the server, and removes its directory, when its stdin
// closes: when stop() ends it, or when this process exits in any way (a crash,
// a kill, a test-runner timeout), so no redis-server outlives the tests.
// It prints the server's pid first (`redis-pid N`), so the caller can tell its
// own server from another that answers on the same port.
const WATCHDOG = 'dir=$1; shift; "$@" & server=$!; echo "redis-pid $server"; read -r _; kill "$server" 2>/dev/null; wait "$server"; rm -rf "$dir"';

export const MISSING = `${REDIS_SERVER} is missing: run scripts/setup.sh, which installs the Debian package redis-server (CI does)`;

/**
 * Runs REDIS_SERVER with `args` (which listen on `port`) under the watchdog,
 * which removes `dir` once the server stops, and waits until it answers on
 * `port` as itself (its pid). Resolves to { server: { port, url, stop() } },
 * or, when it did not (it exited, or another process holds the port; it is
 * stopped then), to { output } with what it printed.
 */
export async function runRedisServer({ dir, port, args, name = 'redis-watchdog' }) {
  const child = spawn('/bin/sh', ['-c', WATCHDOG, name, dir, REDIS_SERVER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (data) => { output += data; });
  child.stderr.on('data', (data) => { output += data; });
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      await exited;
    }
  };
  // The watchdog outlives a server that could not bind, so its exit says
  // nothing: ask who answers on the port until it is our server, another one,
  // or nobody for longer than a start ever takes (a hang guard, not a pause).
  const deadline = Date.now() + 30_000;
  while (child.exitCode === null && Date.now() < deadline) {
    const pid = Number(/^redis-pid (\d+)$/m.exec(output)?.[1] ?? 0);
    const answering = await serverPid(port);
    if (pid && answering === pid) return { server: { port, url: `redis://127.0.0.1:${port}`, stop } };
    if (answering !== null && pid && answering !== pid) break; // the port is someone else's
    if (/Address already in use|Could not create server TCP listening socket/.test(output)) break;
    await sleep(25);
  }
  await stop();
  return { output };
}

/** Starts a throwaway redis-server; resolves to { port, url, stop() }. */
export async function startRedis() {
  if (!existsSync(REDIS_SERVER)) throw new Error(MISSING);
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = await mkdtemp(join(tmpdir(), 'toolgate-redis-'));
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
    const started = await runRedisServer({ dir, port, args });
    if (started.server) return started.server;
    lastOutput = started.output;
  }
  throw new Error(`redis-server did not start (it answered no PING):\n${lastOutput}`);
}
