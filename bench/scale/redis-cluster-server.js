// A throwaway Redis Cluster for the scale benchmark and its smoke test: N
// masters, no replicas, each the Debian package's /usr/bin/redis-server on
// 127.0.0.1 without persistence in its own temporary directory, joined by
// `redis-cli --cluster create`.
//
//   const cluster = await startRedisCluster({ masters: 3 });
//   // cluster.nodes: [{ port, url }], cluster.rootNodes: [{ url }] (for createCluster)
//   await cluster.stop();
//
// Every server runs under tests/js/redis-server.js's watchdog shell, which
// stops it, and removes its directory, when the shell's stdin closes: when
// stop() closes it, or when this process ends in any way (crash, kill,
// Ctrl-C), so no server outlives the run.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { REDIS_SERVER, runRedisServer } from '../../tests/js/redis-server.js';

export { REDIS_SERVER };
export const REDIS_CLI = '/usr/bin/redis-cli';
export const MISSING = `${REDIS_SERVER} or ${REDIS_CLI} is missing: run scripts/setup.sh (Debian package redis-server, which brings redis-tools)`;

const run = promisify(execFile);

function portFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// A port P such that P and its cluster bus port P + 10000 are both free.
async function freeClusterPort(taken) {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (taken.has(port) || taken.has(port + 10000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      taken.add(port);
      taken.add(port + 10000);
      return port;
    }
  }
  throw new Error('no free port pair (P, P + 10000) for a cluster node');
}

/** One raw command on a fresh connection; resolves to the reply text (RESP, unparsed). */
export function rawCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(2000, () => {
      socket.destroy();
      reject(new Error(`no reply from 127.0.0.1:${port}`));
    });
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (data) => {
      reply += data;
      // Good enough for the simple and bulk replies asked for here.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if ((bulk && Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2) || (!bulk && /^[+\-:]/.test(reply) && reply.endsWith('\r\n'))) {
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', reject);
  });
}

async function startNode(base, index, taken) {
  const dir = join(base, `node-${index}`);
  await mkdir(dir, { recursive: true });
  const port = await freeClusterPort(taken);
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no',
    '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000',
    '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning',
  ];
  const started = await runRedisServer({ dir, port, args, name: 'redis-cluster-watchdog' });
  if (started.server) return started.server;
  throw new Error(`redis-server (cluster node ${index}) did not start on port ${port}:\n${started.output}`);
}

/** Starts a cluster of `masters` masters; resolves to { nodes, rootNodes, stop() }. */
export async function startRedisCluster({ masters = 3 } = {}) {
  if (!existsSync(REDIS_SERVER) || !existsSync(REDIS_CLI)) throw new Error(MISSING);
  if (!(Number.isInteger(masters) && masters >= 3)) throw new Error('Redis Cluster needs at least 3 masters');
  const base = await mkdtemp(join(tmpdir(), 'toolgate-redis-cluster-'));
  const taken = new Set();
  const nodes = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(base, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i += 1) nodes.push(await startNode(base, i, taken));
    await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Every node must see every slot served before a client connects.
    for (const node of nodes) {
      for (let waited = 0; ; waited += 100) {
        const info = await rawCommand(node.port, 'CLUSTER', 'INFO');
        if (/cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(info)) break;
        if (waited > 20_000) throw new Error(`cluster node ${node.port} not ready:\n${info}`);
        await sleep(100);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: nodes.map(({ port, url }) => ({ port, url })),
    rootNodes: nodes.map(({ url }) => ({ url })),
    stop,
  };
}
