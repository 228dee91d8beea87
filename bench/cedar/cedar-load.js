// Where cedar-wasm's Node build is, and loading it.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
/** The CommonJS Node build: compiles and instantiates its .wasm synchronously on import. */
export const cedarEntry = require.resolve('@cedar-policy/cedar-wasm/nodejs');
export const cedarDir = dirname(cedarEntry);
export const cedarVersion = JSON.parse(readFileSync(join(cedarDir, '..', 'package.json'), 'utf8')).version;

export async function loadCedar() {
  return (await import(pathToFileURL(cedarEntry).href)).default;
}
