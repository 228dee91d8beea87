// Preloaded (node --import) into every server the proxy benchmark starts: when
// the benchmark's end of this process's stdin closes (it stops the server, or
// it died in any way), the server gets SIGTERM and shuts down as it would
// when an operator stops it (toolgate serve writes its --cpu-prof profile then).
// The main thread only: a worker thread (toolgate's body pool) has a stdin of
// its own that ends at once.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
  process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
}
