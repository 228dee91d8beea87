// `npm pack` / `npm publish` run this first (package.json "prepack"). The
// package ships built files that git does not hold (wasm/dist/, web/dist/):
// a tarball without them, or with ones older than their sources, installs
// and then fails at the first import. So: build when an output is missing or
// older than what it is built from, then check the outputs are whole.
//
// TOOLGATE_PREPACK_NO_BUILD=1 never builds: it fails when an output is missing
// and only warns when one looks stale (the package test sets it: `npm test` has
// just built, and a test must not start a build of minutes).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const at = (relative) => path.join(root, relative);

// Each output with the sources it is built from: files, folders read whole, or
// 'folder/*' for a folder's own files (examples/*: the playground's presets,
// not examples/workers/).
const OUTPUTS = [
  {
    files: ['wasm/dist/toolgate_core.wasm', 'wasm/dist/toolgate_core.mjs'],
    from: ['core', 'wasm/bindings.cpp', 'wasm/CMakeLists.txt', 'CMakeLists.txt'],
  },
  {
    files: ['web/dist/toolgate-playground.js'],
    from: ['web/src', 'web/vite.component.config.js', 'web/vite.shared.js', 'wasm/index.js', 'wasm/call-encoder.js',
      'wasm/memory-store.js', 'wasm/admission.js', 'wasm/errors.js', 'lib/scan.js', 'schema/policy.schema.json', 'examples/*',
      'wasm/dist/toolgate_core.wasm'],
  },
];

function newestMtime(relative) {
  const recursive = !relative.endsWith('/*');
  const full = at(recursive ? relative : relative.slice(0, -2));
  if (!existsSync(full)) return 0;
  const stat = statSync(full);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(full, { recursive, withFileTypes: true })) {
    // Documentation is no source of a build.
    if (entry.isFile() && !entry.name.endsWith('.md')) newest = Math.max(newest, statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

function whyMissing() {
  const file = OUTPUTS.flatMap(({ files }) => files).find((f) => !existsSync(at(f)));
  return file ? `${file} is missing` : null;
}

function whyRebuild() {
  const missing = whyMissing();
  if (missing) return missing;
  for (const { files, from } of OUTPUTS) {
    const oldest = Math.min(...files.map((file) => statSync(at(file)).mtimeMs));
    const source = from.find((relative) => newestMtime(relative) > oldest);
    if (source) return `${files[0]} is older than ${source}`;
  }
  return null;
}

function fail(message) {
  process.stderr.write(`prepack: ${message}\n`);
  process.exit(1);
}

const reason = whyRebuild();
if (reason && process.env.TOOLGATE_PREPACK_NO_BUILD === '1') {
  // Missing outputs cannot be packed; an output that only looks older than a
  // source (a file the build does not use) is packed as it is, with a warning.
  const missing = whyMissing();
  if (missing) fail(`${missing}: run \`npm run build\` first`);
  process.stderr.write(`prepack: warning: ${reason}; packing it as it is (TOOLGATE_PREPACK_NO_BUILD=1)\n`);
} else if (reason) {
  process.stderr.write(`prepack: ${reason}; building (scripts/build.sh)\n`);
  const build = spawnSync('bash', [at('scripts/build.sh')], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) fail('the build failed; nothing packed');
  // The incremental build is the judge of staleness from here (a touched file
  // that changed nothing leaves its output as it was).
  const still = whyMissing();
  if (still) fail(`after the build, ${still}`);
}

// The outputs are whole: a valid module, and every asset the component loads.
if (!WebAssembly.validate(readFileSync(at('wasm/dist/toolgate_core.wasm')))) {
  fail('wasm/dist/toolgate_core.wasm is not a valid WebAssembly module');
}
const component = readFileSync(at('web/dist/toolgate-playground.js'), 'utf8');
const assets = [...new Set(component.match(/assets\/[\w.-]+\.(?:js|wasm)/g) ?? [])];
if (!assets.some((asset) => asset.endsWith('.wasm'))) fail('web/dist/toolgate-playground.js names no .wasm asset');
for (const asset of assets) {
  if (!existsSync(at(`web/dist/${asset}`))) fail(`web/dist/toolgate-playground.js loads ${asset}, which is missing`);
}
