// Live examples for the docs, and the Markdown extensions that keep the docs
// in step with the code. Used by the VitePress config (the markdown-it plugin)
// and by the tests (tests/js/site-docs.test.js reads every example with the
// same parser the site is built with).
//
// In a page:
//
//   ```json live                         a policy, shown as an editable <toolgate-playground>
//   { "version": "1", ... }
//   ```
//   ```jsonl calls                       optional, right after it: the example's calls,
//   {"tool": "run", ..., "expect": "allow"}    each with the decision it must get
//   ```
//
//   ```json live src=../examples/refunds.json      the policy from a file (relative to the
//   ```                                           page); calls from NAME.calls.jsonl beside
//                                                 it unless a calls block follows
//
//   ```json live expect-error=unknown_field       a policy that must NOT pass `toolgate check`,
//   ```json live expect-warning=missing_default   or must pass with that warning
//
// Any other ```json block containing "version" is a policy and must pass
// `toolgate check` with no diagnostics (```json no-check opts a block out; it
// must still be JSON).
//
// Directives (replaced before the page is parsed):
//   <!-- @include-between README.md bench:start bench:end -->   text between two markers of a repo file
//   <!-- @cli-help serve -->                                     `toolgate serve --help`, run at build time
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const siteRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(siteRoot, '..');

// ---------------------------------------------------------------- fence info

/** `json live src=x expect-error=a,b` → { lang, flags: Set, attrs: {} } */
export function parseInfo(info) {
  const words = String(info ?? '').trim().match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
  const [lang = '', ...rest] = words;
  const flags = new Set();
  const attrs = {};
  for (const word of rest) {
    const eq = word.indexOf('=');
    if (eq > 0) attrs[word.slice(0, eq)] = word.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    else flags.add(word);
  }
  return { lang, flags, attrs };
}

const isLive = (info) => {
  const { lang, flags } = parseInfo(info);
  return lang === 'json' && flags.has('live');
};
const isCalls = (info) => {
  const { lang, flags } = parseInfo(info);
  return lang === 'jsonl' && flags.has('calls');
};

/** JSON Lines text → objects (blank lines skipped); throws on a malformed line, naming it. */
export function parseCalls(text, where) {
  const calls = [];
  String(text).split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    try {
      calls.push(JSON.parse(line));
    } catch (error) {
      throw new Error(`${where}: calls line ${i + 1} is not JSON: ${error.message}`);
    }
  });
  return calls;
}

const list = (value) => (value ? String(value).split(',').map((s) => s.trim()).filter(Boolean) : []);

// ---------------------------------------------------------------- directives

/** Replaces the include directives of a page's Markdown source. */
export function expandDirectives(src) {
  return src
    .replace(/<!--\s*@include-between\s+(\S+)\s+(\S+)\s+(\S+)\s*-->/g, (_, file, start, end) => {
      const full = path.resolve(repoRoot, file);
      const text = readFileSync(full, 'utf8');
      const from = text.indexOf(`<!-- ${start} -->`);
      const to = text.indexOf(`<!-- ${end} -->`);
      if (from < 0 || to < from) throw new Error(`@include-between: markers <!-- ${start} --> / <!-- ${end} --> not found in ${file}`);
      return text.slice(from + start.length + 9, to).trim();
    })
    .replace(/<!--\s*@cli-help(?:\s+(\S+))?\s*-->/g, (_, command) => {
      const args = command ? [command, '--help'] : ['--help'];
      const help = execFileSync(process.execPath, [path.join(repoRoot, 'bin/toolgate.js'), ...args], { encoding: 'utf8' });
      return `\`\`\`text\n$ toolgate ${args.join(' ')}\n${help.trimEnd()}\n\`\`\``;
    });
}

// ---------------------------------------------------------------- examples

/**
 * The live examples of a page, from its markdown-it tokens.
 * @returns {{index, line, policy, policySource, calls, callsSource, expectError, expectWarning, title, tokenIndex, callsTokenIndex}[]}
 */
export function examplesFromTokens(tokens, pageFile) {
  const pageDir = path.dirname(pageFile);
  const examples = [];
  tokens.forEach((token, i) => {
    if (token.type !== 'fence' || !isLive(token.info)) return;
    const { attrs } = parseInfo(token.info);
    const line = (token.map?.[0] ?? 0) + 1;
    const where = `${path.relative(repoRoot, pageFile)}:${line}`;
    let policy = token.content;
    let policySource = null;
    let calls = null;
    let callsSource = null;
    if (attrs.src) {
      policySource = path.resolve(pageDir, attrs.src);
      if (!existsSync(policySource)) throw new Error(`${where}: live example src ${attrs.src} does not exist`);
      if (policy.trim()) throw new Error(`${where}: a live example with src= must have an empty body`);
      policy = readFileSync(policySource, 'utf8');
      const sibling = policySource.replace(/\.json$/, '.calls.jsonl');
      if (existsSync(sibling)) {
        callsSource = sibling;
        calls = parseCalls(readFileSync(sibling, 'utf8'), path.relative(repoRoot, sibling));
      }
    }
    const next = tokens[i + 1];
    let callsTokenIndex = -1;
    if (next?.type === 'fence' && isCalls(next.info)) {
      calls = parseCalls(next.content, where);
      callsSource = null;
      callsTokenIndex = i + 1;
    }
    examples.push({
      index: examples.length,
      line,
      where,
      policy: policy.replace(/\n$/, ''),
      policySource,
      calls: calls ?? [],
      callsSource,
      expectError: list(attrs['expect-error']),
      expectWarning: list(attrs['expect-warning']),
      title: attrs.title ?? '',
      tokenIndex: i,
      callsTokenIndex,
    });
  });
  // A calls block must follow a live block.
  tokens.forEach((token, i) => {
    if (token.type === 'fence' && isCalls(token.info) && !examples.some((e) => e.callsTokenIndex === i)) {
      throw new Error(`${path.relative(repoRoot, pageFile)}:${(token.map?.[0] ?? 0) + 1}: a \`\`\`jsonl calls block must come right after a \`\`\`json live block`);
    }
  });
  return examples;
}

/** Plain ```json blocks of a page (not live): { line, content, noCheck }. */
export function jsonBlocksFromTokens(tokens) {
  return tokens
    .filter((t) => t.type === 'fence' && !isLive(t.info) && parseInfo(t.info).lang === 'json')
    .map((t) => ({ line: (t.map?.[0] ?? 0) + 1, content: t.content, noCheck: parseInfo(t.info).flags.has('no-check') }));
}

// ---------------------------------------------------------------- rendering

const escapeAttr = (s) => String(s).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The markdown-it plugin: live fences become <LiveExample> components. */
export function livePlugin(md) {
  const parse = md.parse.bind(md);
  md.parse = (src, env) => {
    const tokens = parse(expandDirectives(src), env);
    const file = env?.path ?? path.join(siteRoot, env?.relativePath ?? 'unknown.md');
    const examples = examplesFromTokens(tokens, file);
    if (env) env.toolgateExamples = examples;
    for (const example of examples) {
      tokens[example.tokenIndex].meta = { ...tokens[example.tokenIndex].meta, toolgateExample: example };
      if (example.callsTokenIndex >= 0) tokens[example.callsTokenIndex].meta = { ...tokens[example.callsTokenIndex].meta, toolgateConsumed: true };
    }
    return tokens;
  };

  const fence = md.renderer.rules.fence;
  md.renderer.rules.fence = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    if (token.meta?.toolgateConsumed) return '';
    const example = token.meta?.toolgateExample;
    if (!example) return fence(tokens, idx, options, env, self);
    // The policy as a highlighted code block: what readers without JavaScript
    // (and search) see, and what shows until the playground is ready.
    const code = new token.constructor('fence', 'code', 0);
    Object.assign(code, { info: 'json', content: `${example.policy}\n`, markup: '```', map: token.map, block: true });
    const fallback = fence([code], 0, options, env, self);
    const page = env?.relativePath ?? '';
    const attrs = [
      `policy="${escapeAttr(example.policy)}"`,
      `calls="${escapeAttr(JSON.stringify(example.calls))}"`,
      `example-id="${escapeAttr(`${page}#${example.index}`)}"`,
    ];
    if (example.expectError.length) attrs.push(`expect-error="${escapeAttr(example.expectError.join(','))}"`);
    if (example.expectWarning.length) attrs.push(`expect-warning="${escapeAttr(example.expectWarning.join(','))}"`);
    if (example.title) attrs.push(`title="${escapeAttr(example.title)}"`);
    if (example.policySource) attrs.push(`source="${escapeAttr(path.relative(repoRoot, example.policySource))}"`);
    return `<LiveExample ${attrs.join(' ')}>${fallback}</LiveExample>\n`;
  };
}
