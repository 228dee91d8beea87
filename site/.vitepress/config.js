// The toolgate docs (VitePress). `npm run build:site` writes static files to
// site/dist/, made to be served at /docs/ (beside the playground that
// scripts/serve-web.js serves at /). `npm run dev:site` for a dev server.
//
// Live examples load the playground component that `npm run build:web` wrote
// to web/dist/ (toolgate-playground.js and its assets/); the build copies it to
// site/dist/live/, and the dev server serves it from web/dist.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { defineConfig } from 'vitepress';
import { livePlugin, repoRoot, siteRoot } from './live.js';

export const base = '/docs/';
const webDist = path.join(repoRoot, 'web', 'dist');
export const playgroundPath = 'live/toolgate-playground.js';

export const sidebar = [
  {
    text: 'Getting started',
    items: [
      { text: 'Your first policy', link: '/guide/' },
      { text: 'The proxy on Node', link: '/guide/node' },
      { text: 'On Cloudflare Workers', link: '/guide/workers' },
      { text: 'Desktop clients (stdio)', link: '/guide/desktop' },
      { text: 'Operating toolgate', link: '/guide/operate' },
      { text: 'Authorization (OAuth 2.1)', link: '/guide/authorization' },
    ],
  },
  {
    text: 'Policy language',
    items: [
      { text: 'Document and tool entries', link: '/reference/policy' },
      { text: 'Conditions', link: '/reference/conditions' },
      { text: 'Limits', link: '/reference/limits' },
      { text: 'Decisions', link: '/reference/decisions' },
      { text: 'Errors and warnings', link: '/reference/diagnostics' },
    ],
  },
  {
    text: 'Cookbook',
    items: [
      { text: 'Overview', link: '/cookbook/' },
      { text: 'Convex: run 10 a minute', link: '/cookbook/convex-run' },
      { text: 'Cargo: run with argument checks', link: '/cookbook/cargo-run' },
      { text: 'Refunds over a limit', link: '/cookbook/refunds' },
      { text: 'No force-push to main', link: '/cookbook/github-push' },
      { text: 'Approvals for deploys', link: '/cookbook/deploy-approvals' },
      { text: 'Daily spend caps', link: '/cookbook/spend-caps' },
    ],
  },
  {
    text: 'Concepts',
    items: [
      { text: 'Grants', link: '/concepts/grants' },
      { text: 'Counters and windows', link: '/concepts/counters' },
      { text: 'Approvals', link: '/concepts/approvals' },
      { text: 'Fail closed', link: '/concepts/fail-closed' },
      { text: 'Counter stores', link: '/concepts/stores' },
      { text: 'Scaling out', link: '/scaling' },
      { text: 'The audit log', link: '/concepts/audit' },
      { text: 'Tool integrity (pins)', link: '/concepts/tool-integrity' },
    ],
  },
  {
    text: 'More',
    items: [
      { text: 'Security model', link: '/security' },
      { text: 'Embedding live examples', link: '/embedding' },
      { text: 'Benchmarks', link: '/benchmarks' },
      { text: 'Playground', link: '/playground' },
    ],
  },
  {
    text: 'API',
    items: [
      { text: 'JavaScript API', link: '/api/js' },
      { text: 'Command line', link: '/api/cli' },
    ],
  },
];

// Does a page (site-relative .md path) have live examples? Then it preloads the component.
function hasLiveExamples(relativePath) {
  try {
    return /^```json live|<FullPlayground/m.test(readFileSync(path.join(siteRoot, relativePath), 'utf8'));
  } catch {
    return false;
  }
}

// The files the component needs: the module, and what it references under assets/.
async function playgroundFiles() {
  const module = path.join(webDist, 'toolgate-playground.js');
  if (!existsSync(module)) {
    throw new Error(`${module} does not exist: run \`npm run build:web\` before building the docs`);
  }
  const text = readFileSync(module, 'utf8');
  const assets = new Set([...text.matchAll(/assets\/([A-Za-z0-9_.-]+\.(?:js|wasm|css))/g)].map((m) => m[1]));
  const present = new Set(await readdir(path.join(webDist, 'assets')));
  for (const name of assets) if (!present.has(name)) throw new Error(`web/dist/assets/${name} is missing: rebuild with npm run build:web`);
  return ['toolgate-playground.js', ...[...assets].map((name) => `assets/${name}`)];
}

const types = { '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.css': 'text/css; charset=utf-8' };

export default defineConfig({
  title: 'toolgate',
  description: 'A policy layer for AI agents’ MCP tool calls: allow, deny or ask a human, with rate limits per grant.',
  lang: 'en',
  base,
  srcDir: '.',
  outDir: 'dist',
  cacheDir: '../node_modules/.cache/vitepress',
  srcExclude: ['README.md', 'dist/**', 'node_modules/**'],
  cleanUrls: false,
  lastUpdated: false,
  head: [['link', { rel: 'icon', href: 'data:,' }]],

  markdown: {
    config: (md) => md.use(livePlugin),
  },

  vue: {
    template: { compilerOptions: { isCustomElement: (tag) => tag === 'toolgate-playground' } },
  },

  vite: {
    plugins: [
      {
        // `npm run dev:site`: serve the built component from web/dist.
        name: 'toolgate-playground-dev',
        configureServer(server) {
          server.middlewares.use((req, res, next) => {
            const url = new URL(req.url, 'http://localhost');
            const prefix = `${base}live/`;
            if (!url.pathname.startsWith(prefix)) return next();
            const file = path.resolve(webDist, `.${url.pathname.slice(prefix.length - 1)}`);
            if (!file.startsWith(webDist + path.sep) || !existsSync(file)) return next();
            res.setHeader('content-type', types[path.extname(file)] ?? 'application/octet-stream');
            createReadStream(file).pipe(res);
          });
        },
      },
    ],
  },

  // Pages with live examples start fetching the component and the core with the
  // page (the theme then starts compiling the core while the page hydrates).
  async transformHead({ pageData }) {
    if (!hasLiveExamples(pageData.relativePath)) return [];
    const wasm = (await playgroundFiles()).find((file) => file.endsWith('.wasm'));
    return [
      ['link', { rel: 'modulepreload', href: `${base}${playgroundPath}` }],
      // Matches the core's own fetch(url) (mode cors, same-origin credentials), so it is fetched once.
      ['link', { rel: 'preload', as: 'fetch', type: 'application/wasm', crossorigin: '', href: `${base}live/${wasm}` }],
    ];
  },

  async buildEnd(siteConfig) {
    const files = await playgroundFiles();
    for (const file of files) {
      const target = path.join(siteConfig.outDir, 'live', file);
      await mkdir(path.dirname(target), { recursive: true });
      await cp(path.join(webDist, file), target);
    }
  },

  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/', activeMatch: '^/guide/' },
      { text: 'Reference', link: '/reference/policy', activeMatch: '^/reference/' },
      { text: 'Cookbook', link: '/cookbook/', activeMatch: '^/cookbook/' },
      { text: 'Concepts', link: '/concepts/grants', activeMatch: '^/concepts/' },
      { text: 'API', link: '/api/js', activeMatch: '^/api/' },
      { text: 'Playground', link: '/playground' },
    ],
    sidebar,
    outline: { level: [2, 3] },
    search: { provider: 'local' },
    footer: { message: 'Every policy on these pages is checked by the test suite, and every live example runs on the real core, in your browser.' },
    docFooter: { prev: 'Previous', next: 'Next' },
  },
});
