// Serves the built playground (web/dist) as static files on loopback. Used
// by `npm start`, with the docs site (site/dist) at /docs/.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../web/dist/', import.meta.url));
const docsRoot = fileURLToPath(new URL('../site/dist/', import.meta.url));
const port = Number(process.env.PORT ?? 8787);
const host = process.env.HOST ?? '127.0.0.1';
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

const server = createServer(async (request, response) => {
  const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  if (path === '/docs') {
    response.writeHead(301, { location: '/docs/' }).end();
    return;
  }
  // /docs/... from site/dist, everything else from web/dist.
  const docs = path.startsWith('/docs/');
  const base = docs ? docsRoot : root;
  const relative = docs ? path.slice('/docs'.length) : path;
  const file = normalize(join(base, relative.endsWith('/') ? `${relative}index.html` : relative));
  // Never serve anything outside the served folder (../ in the path).
  if (!file.startsWith(base.endsWith(sep) ? base : base + sep) || request.method !== 'GET') {
    response.writeHead(request.method === 'GET' ? 403 : 405).end();
    return;
  }
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a file');
    response.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'x-content-type-options': 'nosniff',
    });
    createReadStream(file).pipe(response);
  } catch {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
});

server.listen(port, host, () => {
  console.log(`\ntoolgate playground: http://${host}:${server.address().port}/`);
  console.log(`embedding demo:      http://${host}:${server.address().port}/embed.html`);
  console.log(`docs:                http://${host}:${server.address().port}/docs/`);
  console.log('(Ctrl+C to stop)');
});
