// Shared Vite settings for the playground builds (pages and the standalone component).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const webRoot = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(webRoot, '..');

const MISSING_SCAN = '\0toolgate-scan-missing';

// codemirror-json-schema renders hover/completion docs with markdown-it + shiki
// (hundreds of KB, loaded at startup). The policy schema's descriptions are
// plain sentences, so a tiny escaping renderer replaces it. Its output goes to
// innerHTML inside the library, hence: escape everything first.
const MARKDOWN_STUB = `
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
export function renderMarkdown(markdown, inline = true) {
  const html = escape(markdown).replace(/\`([^\`]+)\`/g, '<code>$1</code>').replace(/\\*\\*([^*]+)\\*\\*/g, '<strong>$1</strong>');
  return inline ? html : html.split(/\\n{2,}/).map((p) => '<p>' + p + '</p>').join('');
}
`;

// The library's parser table also pulls JSON5 and YAML parsers; the playground edits JSON only.
const PARSERS_STUB = `
import { parseJSONDocumentState } from './json-parser';
export const getDefaultParser = () => parseJSONDocumentState;
`;

export function playgroundPlugin() {
  return {
    name: 'toolgate-playground',
    enforce: 'pre',
    resolveId(source, importer) {
      // lib/scan.js is written in parallel; build without it rather than fail.
      if (importer && source.endsWith('/lib/scan.js')) {
        const resolved = path.resolve(path.dirname(importer.split('?')[0]), source);
        if (!existsSync(resolved)) return MISSING_SCAN;
      }
      return null;
    },
    load(id) {
      if (id === MISSING_SCAN) {
        return `export class ScanError extends Error { constructor(m) { super(m); this.name = 'ScanError'; } }
export function scanTools() { throw new ScanError('the scanner (lib/scan.js) was not available when this page was built'); }`;
      }
      const file = id.split('?')[0].replace(/\\/g, '/');
      if (file.endsWith('/codemirror-json-schema/dist/utils/markdown.js')) return MARKDOWN_STUB;
      if (file.endsWith('/codemirror-json-schema/dist/parsers/index.js')) return PARSERS_STUB;
      return null;
    },
  };
}
