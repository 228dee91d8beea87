// The modules of a worker for Miniflare, listed explicitly with their contents
// (its automatic collection rejects wasm/index.js, whose Node-only branch does
// a dynamic import() with a non-literal specifier: ERR_MODULE_DYNAMIC_SPEC).
// Shared by the workerd tests and benchmarks, so that a new module of the
// façade or the proxy needs no change to any list.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The module graph of `entry` (a path relative to the repository root, which
 * is Miniflare's modulesRoot): relative static imports and re-exports,
 * followed; .wasm as CompiledWasm. The entry point comes first. Bare
 * specifiers (npm packages) are left to the caller, except those of PACKAGES,
 * which are added as wrangler would bundle them: a module beside the importer
 * (where workerd looks a bare specifier up) re-exporting the package's web
 * build, and that build's own module graph.
 */
const PACKAGES = {
  jose: 'node_modules/jose/dist/webapi/index.js',
  'eventsource-parser': 'node_modules/eventsource-parser/dist/index.js', // worker/sse.js
};

export async function moduleGraph(entry) {
  const seen = new Map();
  const visit = async (relative) => {
    if (seen.has(relative)) return;
    const file = path.join(ROOT, relative);
    const contents = await readFile(file);
    if (relative.endsWith('.wasm')) {
      seen.set(relative, { type: 'CompiledWasm', path: file, contents });
      return;
    }
    seen.set(relative, { type: 'ESModule', path: file, contents });
    const source = contents.toString('utf8');
    for (const match of source.matchAll(/(?:^|[;\n])\s*(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[;\n])\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const specifier = match[1] ?? match[2];
      await visit(path.relative(ROOT, path.resolve(path.dirname(file), specifier)));
    }
    for (const match of source.matchAll(/(?:^|[;\n])\s*(?:import|export)\s[^'"]*?from\s*['"]([^./'"][^'"]*)['"]/g)) {
      const target = PACKAGES[match[1]];
      if (!target) continue;
      const shim = path.join(path.dirname(relative), match[1]);
      if (!seen.has(shim)) {
        const relativeTarget = path.relative(path.dirname(shim), target);
        seen.set(shim, { type: 'ESModule', path: path.join(ROOT, shim), contents: Buffer.from(`export * from './${relativeTarget}';\n`) });
      }
      await visit(target);
    }
  };
  await visit(entry);
  return [...seen.values()];
}
