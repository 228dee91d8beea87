// The npm package as a user gets it. `npm pack` makes the tarball (its prepack
// checks the built wasm/dist and web/dist), npm installs it into an empty
// folder whose PATH holds node, npm, npx and sh and nothing else (no compiler,
// no CMake, no Emscripten), and everything runs from there: the CLI (--version,
// check, eval, scan), `toolgate serve` in front of the real MCP reference
// server with the official SDK client, `toolgate stdio`, the JS API through
// every public export, the Workers entry bundled by wrangler from the shipped
// wrangler.toml template and run in workerd (Miniflare), and the
// <toolgate-playground> component served from the installed files in Chromium.
//
// It also holds the package to what it promises: every file the public entry
// points load is in the tarball, nothing that only builds or tests is, and
// every package the shipped code imports is a dependency (or the optional
// peer `redis`, whose absence is a clear message).
//
// The install needs the npm registry (or npm's cache); CI has it. It uses
// --prefer-offline, so a warm cache makes it quick.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Miniflare } from 'miniflare';

import { repoRoot } from './cli-helpers.js';
import { EVERYTHING, collectOutput, connectClient, sha256, slidingRateLimit, startEverything } from './proxy-helpers.js';
import { chromiumMissing, launchChromium, recordDecisionEvents, screenshot, send, startStaticServer, trackProblems, waitReady } from './browser-helpers.js';

const repoPackage = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const NAME = repoPackage.name;
const scratch = mkdtempSync(path.join(tmpdir(), 'toolgate-package-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// What a consumer's PATH must not offer: the package needs no toolchain.
const TOOLCHAIN = ['emcc', 'em++', 'emcmake', 'cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'clang++-14', 'cmake', 'make', 'ld'];
// Packages that only build, test or benchmark: never a runtime dependency.
const BUILD_ONLY = /^(vite|vitepress|codemirror|codemirror-json-schema|@codemirror\/.*|autocannon|playwright-core|miniflare|wrangler|workerd|esbuild|@cedar-policy\/.*|@modelcontextprotocol\/server-everything|rolldown)$/;

// A folder with node, npm, npx and sh only: the consumer's whole PATH.
function minimalPath() {
  const bin = path.join(scratch, 'bin');
  mkdirSync(bin);
  const npm = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  const npx = path.join(path.dirname(npm), 'npx-cli.js');
  assert.ok(existsSync(npx), `npx next to npm (${npm})`);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  symlinkSync(npm, path.join(bin, 'npm'));
  symlinkSync(npx, path.join(bin, 'npx'));
  symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

// A child process's whole result, with a deadline (killed past it).
function run(command, args, { cwd, env, input = '', timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') reject(new Error(`${command} ${args.join(' ')} took over ${timeout} ms: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

let tarball; // { path, files: [paths in the tarball], pack: npm pack's JSON }
let app; // the consumer's folder
let env; // the consumer's environment
let installed; // app/node_modules/<name>
let everything;

before(async () => {
  // prepack must not start a build here: `npm test` has just built.
  const packed = await run('npm', ['pack', '--json', '--pack-destination', scratch], {
    cwd: repoRoot, env: { ...process.env, TOOLGATE_PREPACK_NO_BUILD: '1' }, timeout: 120_000,
  });
  assert.equal(packed.code, 0, `npm pack: ${packed.stderr}`);
  const [pack] = JSON.parse(packed.stdout);
  tarball = { path: path.join(scratch, pack.filename), files: pack.files.map((f) => f.path), pack };

  app = path.join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // Of the build machine's environment, only what reaches the registry (home,
  // proxies, certificates, npm's registry and cache settings): no NODE_PATH, no
  // EMSDK or CC, no npm_* of a surrounding `npm test`, no PATH but node's.
  const kept = /^(HOME|USER|LANG|LC_\w+|TMPDIR|TZ|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY|NODE_EXTRA_CA_CERTS|SSL_CERT_(FILE|DIR)|npm_config_(registry|cache|userconfig|globalconfig|cafile|strict_ssl|proxy|https_proxy|noproxy))$/;
  env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => kept.test(key))),
    PATH: minimalPath(),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    WRANGLER_SEND_METRICS: 'false',
    // wrangler writes its debug log under HOME otherwise
    WRANGLER_LOG_PATH: path.join(scratch, 'wrangler-logs'),
  };
  const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball.path], { cwd: app, env, timeout: 240_000 });
  assert.equal(install.code, 0, `npm install of the tarball: ${install.stderr}`);
  installed = path.join(app, 'node_modules', NAME);
  everything = await startEverything();
});
after(() => everything?.stop());

// Relative and bare specifiers a module imports (static, re-exports, literal import()).
function importsOf(source) {
  const specifiers = new Set();
  const patterns = [
    /(?:^|[;\n}])\s*(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[;\n])\s*import\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*(?:\/\*[^*]*\*\/\s*)?['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) specifiers.add(match[1]);
  return [...specifiers];
}

describe('the tarball', () => {
  test('is publishable: a name, a version, not private, a license, a bin', () => {
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    assert.equal(manifest.private, undefined);
    assert.match(manifest.name, /^(@[a-z0-9-]+\/)?[a-z0-9-]+$/);
    assert.match(manifest.version, /^\d+\.\d+\.\d+/);
    assert.ok(manifest.license);
    assert.deepEqual(Object.keys(manifest.bin), ['toolgate']);
    for (const name of Object.keys(manifest.dependencies)) assert.doesNotMatch(name, BUILD_ONLY, `${name} is a build or test tool, not a runtime dependency`);
    assert.ok(!manifest.dependencies.redis, 'redis is an optional peer, loaded only when used');
    assert.equal(manifest.peerDependenciesMeta?.redis?.optional, true);
  });

  test('holds the built core, the component and every file an entry point loads', () => {
    const files = new Set(tarball.files);
    for (const built of ['wasm/dist/toolgate_core.wasm', 'wasm/dist/toolgate_core.mjs', 'web/dist/toolgate-playground.js', 'wasm/index.d.ts', 'lib/scan.d.ts']) {
      assert.ok(files.has(built), `${built} is in the tarball`);
    }
    // The component's chunks and .wasm, found relative to it.
    const component = readFileSync(path.join(installed, 'web/dist/toolgate-playground.js'), 'utf8');
    const assets = [...new Set(component.match(/assets\/[\w.-]+\.(?:js|wasm)/g))];
    assert.ok(assets.some((a) => a.endsWith('.wasm')));
    for (const asset of assets) assert.ok(files.has(`web/dist/${asset}`), `the component loads web/dist/${asset}`);

    // Every public entry point, then everything it imports, transitively.
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    const targets = (value) => (typeof value === 'string' ? [value] : Object.values(value).flatMap(targets));
    const entries = [...Object.values(manifest.exports).flatMap(targets), ...Object.values(manifest.bin), manifest.main, manifest.types]
      .map((p) => path.posix.normalize(p));
    // bin/toolgate.js loads its subcommands by name (import(`../lib/cli/${command}.js`)).
    entries.push(...tarball.files.filter((f) => f.startsWith('lib/cli/')));
    const dependencies = new Set([...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies ?? {})]);
    const seen = new Set();
    const queue = [...entries];
    while (queue.length > 0) {
      const file = queue.shift();
      if (seen.has(file)) continue;
      seen.add(file);
      assert.ok(files.has(file), `${file} is in the tarball (reached from the entry points)`);
      if (!/\.(m?js)$/.test(file)) continue;
      for (const specifier of importsOf(readFileSync(path.join(installed, file), 'utf8'))) {
        if (specifier.startsWith('.')) {
          queue.push(path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)));
        } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier) && specifier !== 'cloudflare:workers') {
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
          assert.ok(dependencies.has(name), `${file} imports ${specifier}: "${name}" must be a dependency`);
        }
      }
    }
  });

  test('holds nothing that only builds or tests', () => {
    const forbidden = /^(core|tests|bench|scripts|site|build|node_modules|\.ci|web\/src)\/|(^|\/)CMakeLists\.txt$|\.(cpp|h|hpp)$|^web\/(vite\..*|index\.html|embed\.html)$|^worker\/wrangler\.toml$/;
    const wrong = tarball.files.filter((f) => forbidden.test(f));
    assert.deepEqual(wrong, []);
  });
});

describe('installed from the tarball, no toolchain on PATH', () => {
  test('the PATH has no compiler, CMake or Emscripten', () => {
    for (const tool of TOOLCHAIN) {
      for (const dir of env.PATH.split(path.delimiter)) assert.ok(!existsSync(path.join(dir, tool)), `${tool} in ${dir}`);
    }
  });

  test('a lean install: runtime dependencies only', async (t) => {
    const listed = await run('npm', ['ls', '--all', '--parseable'], { cwd: app, env });
    const packages = listed.stdout.trim().split('\n').slice(1); // the first line is the consumer itself
    const names = packages.map((p) => path.relative(path.join(app, 'node_modules'), p).split(`${path.sep}node_modules${path.sep}`).pop());
    const bytes = (dir) => readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile()).reduce((sum, e) => sum + statSync(path.join(e.parentPath ?? e.path, e.name)).size, 0);
    const megabytes = bytes(path.join(app, 'node_modules')) / 1e6;
    t.diagnostic(`the install: ${packages.length} packages, ${megabytes.toFixed(1)} MB of files`);
    for (const name of names) assert.doesNotMatch(name, BUILD_ONLY, `${name} is installed into the consumer`);
    assert.ok(!names.includes('redis'), 'the Redis client is not installed unless asked for');
    // Before this package was lean: 200 packages, 84 MB (the editor, Vite, Redis...).
    assert.ok(packages.length < 140, `${packages.length} packages`);
  });

  test('npx toolgate --version prints the package version', async () => {
    const result = await run('npx', ['--no-install', 'toolgate', '--version'], { cwd: app, env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `toolgate ${repoPackage.version}\n`);
  });

  test('check and eval', async () => {
    writeFileSync(path.join(app, 'policy.json'), JSON.stringify({ version: '1', default: 'deny', tools: { run: { rate_limit: '2/minute' } } }, null, 2));
    writeFileSync(path.join(app, 'bad.json'), '{ "version": "1",\n  "default": "deny",\n  "tools": { "run": { "deny_iff": [] } } }\n');
    const good = await run('npx', ['--no-install', 'toolgate', 'check', 'policy.json'], { cwd: app, env });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    const bad = await run('npx', ['--no-install', 'toolgate', 'check', 'bad.json'], { cwd: app, env });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^bad\.json:3:\d+: error: unknown field "deny_iff"/m);
    const calls = ['run', 'run', 'run', 'deploy'].map((tool) => JSON.stringify({ tool, grant: 'alice', now: '2026-01-01T00:00:00Z' })).join('\n');
    const evaluated = await run('npx', ['--no-install', 'toolgate', 'eval', '--policy', 'policy.json'], { cwd: app, env, input: `${calls}\n` });
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.deepEqual(evaluated.stdout.trim().split('\n').map((line) => JSON.parse(line).code), ['allowed', 'allowed', 'rate_limited', 'default_deny']);
  });

  test('the JS API through every public export', async () => {
    const script = `
      const name = ${JSON.stringify(NAME)};
      const { loadToolgate, MemoryCounterStore, MemoryApprovalStore, PolicyError } = await import(name);
      const toolgate = await loadToolgate();
      const policy = toolgate.compile(JSON.stringify({ version: '1', default: 'deny', tools: { run: { rate_limit: '1/minute' } } }));
      const stores = { counters: new MemoryCounterStore(), approvals: new MemoryApprovalStore(), now: Date.UTC(2026, 0, 1) };
      const decisions = [];
      for (const tool of ['run', 'run', 'deploy']) decisions.push((await policy.decide({ tool, grant: 'alice' }, stores)).code);
      let invalid;
      try { toolgate.compile('{"version": "1", "tools": 3}'); } catch (error) { invalid = error instanceof PolicyError && error.diagnostics.length > 0; }
      const { scanTools } = await import(name + '/scan');
      const scan = scanTools({ tools: [{ name: 'delete_repo', description: 'Delete a repository', inputSchema: { type: 'object' } }] });
      const { createHandler } = await import(name + '/proxy');
      const { startProxy } = await import(name + '/proxy/node');
      const redis = await import(name + '/stores/redis');
      let redisError;
      try { await redis.createRedisCounterStore({ url: 'redis://127.0.0.1:1' }); } catch (error) { redisError = error.message; }
      const manifest = (await import(name + '/package.json', { with: { type: 'json' } })).default;
      const resolved = Object.keys(manifest.exports).map((key) => import.meta.resolve(name + key.slice(1)));
      console.log(JSON.stringify({ decisions, invalid, scan: scan.tools.map((t) => t.category), handler: typeof createHandler, startProxy: typeof startProxy, redisError, resolved }));
    `;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env });
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout);
    assert.deepEqual(out.decisions, ['allowed', 'rate_limited', 'default_deny']);
    assert.equal(out.invalid, true);
    assert.deepEqual(out.scan, ['destructive']);
    assert.equal(out.handler, 'function');
    assert.equal(out.startProxy, 'function');
    assert.match(out.redisError, /npm install redis/);
    for (const url of out.resolved) {
      const file = new URL(url).pathname;
      assert.ok(file.startsWith(realpathSync(installed) + path.sep) && existsSync(file), `${url} is an installed file`);
    }
  });

  test('serve: the real MCP SDK client through the installed proxy to a real server', { timeout: 60_000 }, async () => {
    // echo sliding: its count is made against the wall clock (slidingRateLimit)
    writeFileSync(path.join(app, 'everything.json'), JSON.stringify({ version: '1', default: 'deny', hide: ['get-env'], tools: { 'get-sum': {}, echo: slidingRateLimit(1, 'hour') } }));
    writeFileSync(path.join(app, 'grants.json'), JSON.stringify({ grants: [{ id: 'alice', token_sha256: sha256('alice-package') }] }));
    // Port 0, read from what serve prints: a port picked here and bound by
    // the child later could be taken by another process in between.
    const child = spawn(path.join(app, 'node_modules/.bin/toolgate'), ['serve', '--policy', 'everything.json', '--grants', 'grants.json', '--upstream', everything.url, '--port', '0'], {
      cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stderr = collectOutput(child.stderr);
    child.stdout.resume();
    try {
      const port = /is listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(await stderr.until(/is listening on \S+\n/, 'toolgate serve listening'))[1];
      const client = await connectClient(`http://127.0.0.1:${port}/mcp`, 'alice-package');
      try {
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        assert.ok(names.includes('get-sum') && !names.includes('get-env'), names.join());
        const sum = await client.callTool({ name: 'get-sum', arguments: { a: 40, b: 2 } });
        assert.match(sum.content.map((c) => c.text).join(''), /42/);
        assert.equal((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).isError, undefined);
        assert.equal((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent.code, 'rate_limited');
        assert.equal((await client.callTool({ name: 'get-env', arguments: {} })).structuredContent.code, 'hidden');
      } finally {
        await client.close();
      }
      const anonymous = await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(anonymous.status, 401);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
  });

  test('serve --store redis:// without the Redis client says how to add it', async () => {
    const result = await run('npx', ['--no-install', 'toolgate', 'serve', '--policy', 'policy.json', '--upstream', everything.url, '--port', '0', '--store', 'redis://127.0.0.1:1'], { cwd: app, env });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /node-redis client, which is not installed: run `npm install redis`/);
  });

  test('stdio: the SDK client through the installed proxy to a stdio server', { timeout: 60_000 }, async () => {
    const transport = new StdioClientTransport({
      command: path.join(app, 'node_modules/.bin/toolgate'),
      args: ['stdio', '--policy', 'everything.json', '--grant', 'desktop', '--', process.execPath, EVERYTHING, 'stdio'],
      cwd: app,
      env,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'toolgate-package-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const names = (await client.listTools()).tools.map((tool) => tool.name);
      assert.ok(names.includes('get-sum') && !names.includes('get-env'), names.join());
      assert.match((await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).content.map((c) => c.text).join(''), /3/);
      assert.equal((await client.callTool({ name: 'get-tiny-image', arguments: {} })).structuredContent.code, 'default_deny');
    } finally {
      await client.close();
    }
  });

  test('scan: classifies a real server and writes a starter policy that passes check', { timeout: 60_000 }, async () => {
    const scanned = await run('npx', ['--no-install', 'toolgate', 'scan', everything.url, '--out', 'starter.json'], { cwd: app, env });
    assert.equal(scanned.code, 0, scanned.stderr);
    assert.match(scanned.stdout + scanned.stderr, /get-sum/);
    const checked = await run('npx', ['--no-install', 'toolgate', 'check', 'starter.json'], { cwd: app, env });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.ok(JSON.parse(readFileSync(path.join(app, 'starter.json'), 'utf8')).tools['get-sum']);
  });
});

describe('Cloudflare Workers from the installed package', () => {
  let bundle;
  before(async () => {
    // The shipped template, as its README says: wrangler.toml and src/index.js
    // beside the consumer's package.json, which has the package installed.
    const template = path.join(installed, 'examples/workers');
    const worker = path.join(app, 'worker');
    mkdirSync(path.join(worker, 'src'), { recursive: true });
    for (const file of ['wrangler.toml', 'src/index.js']) writeFileSync(path.join(worker, file), readFileSync(path.join(template, file)));
    const outdir = path.join(scratch, 'worker-bundle');
    const wrangler = path.join(repoRoot, 'node_modules/wrangler/bin/wrangler.js');
    const built = await run(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outdir], { cwd: worker, env, timeout: 120_000 });
    assert.equal(built.code, 0, `wrangler deploy --dry-run: ${built.stdout}${built.stderr}`);
    bundle = outdir;
  });

  test('the bundle is made of the installed files, not the repository', () => {
    const map = JSON.parse(readFileSync(path.join(bundle, 'index.js.map'), 'utf8'));
    const sources = map.sources.map((s) => path.resolve(bundle, s));
    assert.ok(sources.some((s) => s.startsWith(path.join(installed, 'worker') + path.sep)), sources.join('\n'));
    const outside = sources.filter((s) => !s.startsWith(app + path.sep));
    assert.deepEqual(outside, [], 'every bundled source is in the consumer folder');
  });

  test('runs in workerd: the SDK client through Durable Object counters to a real server', { timeout: 90_000 }, async () => {
    const modules = readdirSync(bundle)
      .filter((f) => f.endsWith('.js') || f.endsWith('.wasm'))
      .sort((a, b) => (a === 'index.js' ? -1 : b === 'index.js' ? 1 : a.localeCompare(b)))
      .map((f) => ({ type: f.endsWith('.wasm') ? 'CompiledWasm' : 'ESModule', path: path.join(bundle, f), contents: readFileSync(path.join(bundle, f)) }));
    const mf = new Miniflare({
      modulesRoot: bundle,
      modules,
      compatibilityDate: '2025-01-01',
      bindings: {
        UPSTREAM_URL: everything.url,
        POLICY: JSON.stringify({ version: '1', default: 'deny', hide: ['get-env'], tools: { 'get-sum': {}, echo: slidingRateLimit(1, 'hour') } }),
        GRANTS: JSON.stringify({ grants: [{ id: 'alice', token_sha256: sha256('alice-workers') }] }),
        ADMIN_TOKEN: 'package-admin',
      },
      durableObjects: {
        COUNTERS: { className: 'ToolgateCounters', useSQLite: true },
        APPROVALS: { className: 'ToolgateApprovals', useSQLite: true },
      },
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const url = (await mf.ready).href.replace(/\/$/, '');
      const client = await connectClient(`${url}/mcp`, 'alice-workers');
      try {
        const names = (await client.listTools()).tools.map((tool) => tool.name);
        assert.ok(names.includes('get-sum') && !names.includes('get-env'), names.join());
        assert.match((await client.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } })).content.map((c) => c.text).join(''), /42/);
        assert.equal((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).isError, undefined);
        assert.equal((await client.callTool({ name: 'echo', arguments: { message: 'x' } })).structuredContent.code, 'rate_limited');
      } finally {
        await client.close();
      }
      assert.equal((await fetch(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
    } finally {
      await mf.dispose();
    }
  });
});

describe('the <toolgate-playground> component from the installed files', () => {
  const skip = chromiumMissing();
  test('renders and decides in Chromium', { skip: skip ?? false, timeout: 90_000 }, async () => {
    const page = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>toolgate component</title>
      <script type="module" src="/toolgate-playground.js"></script>
      <toolgate-playground preset="refunds"></toolgate-playground>`;
    const server = await startStaticServer(path.join(installed, 'web/dist'), { files: { '/page.html': page } });
    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
      await context.addInitScript(recordDecisionEvents);
      const tab = await context.newPage();
      const problems = trackProblems(tab);
      try {
        assert.equal((await tab.goto(`${server.origin}/page.html`)).status(), 200);
        await waitReady(tab);
        const decision = await send(tab);
        // The refunds preset's first call: $80, by a support agent.
        assert.equal(decision.decision, 'allow', JSON.stringify(decision));
        assert.equal(server.countMatching(/\.wasm$/), 1, 'the .wasm came from the installed files');
        assert.deepEqual(problems, []);
      } finally {
        await screenshot(tab, 'package-component');
        await context.close();
      }
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
