// The docs site (site/) cannot rot: every policy a page shows passes
// `toolgate check` (or fails with exactly the error the page says it shows),
// every live example's calls get the decisions the page promises
// (`toolgate eval` with "expect"), and the policy language reference covers
// every field, operator, window, algorithm, decision code and diagnostic, each
// with a live example. Pages are read with the same Markdown renderer and
// plugin the site is built with (site/.vitepress/live.js).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMarkdownRenderer } from 'vitepress';
import config, { sidebar } from '../../site/.vitepress/config.js';
import { jsonBlocksFromTokens, repoRoot, siteRoot } from '../../site/.vitepress/live.js';
import { runCli } from './cli-helpers.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'toolgate-site-docs-'));

function listPages(dir, prefix = '') {
  const pages = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'dist' || entry.name === 'node_modules') continue;
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) pages.push(...listPages(path.join(dir, entry.name), relative));
    else if (entry.name.endsWith('.md') && relative !== 'README.md') pages.push(relative);
  }
  return pages.sort();
}

const md = await createMarkdownRenderer(siteRoot, config.markdown, config.base);
const pages = listPages(siteRoot).map((relativePath) => {
  const file = path.join(siteRoot, relativePath);
  const env = { path: file, relativePath };
  const tokens = md.parse(readFileSync(file, 'utf8'), env);
  // Policies inside other blocks count too: TOML multi-line strings ('''...'''), as in wrangler.toml.
  const embedded = tokens
    .filter((t) => t.type === 'fence' && /^toml\b/.test(t.info))
    .flatMap((t) => [...t.content.matchAll(/'''\n?([\s\S]*?)'''/g)].map((m) => ({ line: (t.map?.[0] ?? 0) + 1, content: m[1], noCheck: false })));
  return { relativePath, file, tokens, examples: env.toolgateExamples ?? [], json: [...jsonBlocksFromTokens(tokens), ...embedded] };
});
const byPath = new Map(pages.map((page) => [page.relativePath, page]));

const slug = (relativePath) => relativePath.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-');

// `toolgate check --json` on several policy texts at once: one result per text, in order.
async function check(texts, name) {
  const files = texts.map((text, i) => {
    const file = path.join(scratch, `${name}-${i}.json`);
    writeFileSync(file, text);
    return file;
  });
  const result = await runCli(['check', '--json', ...files]);
  const parsed = JSON.parse(result.stdout);
  return Array.isArray(parsed) ? parsed : [parsed];
}

const describeDiagnostics = (diagnostics) => diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}: ${d.message} (${d.pointer})`).join('\n');

test('the site has its pages, and every page is in the sidebar', () => {
  assert.ok(pages.length >= 20, `${pages.length} pages`);
  const linked = new Set(sidebar.flatMap((group) => group.items.map((item) => item.link)));
  for (const { relativePath } of pages) {
    if (relativePath === 'index.md') continue;
    const link = `/${relativePath.replace(/(^|\/)index\.md$/, '$1').replace(/\.md$/, '')}`;
    assert.ok(linked.has(link), `${relativePath} is not in the sidebar (${link})`);
  }
});

for (const page of pages) {
  if (!page.examples.length && !page.json.some((block) => block.content.includes('"version"'))) continue;
  describe(`site/${page.relativePath}`, () => {
    if (page.examples.length) {
      test(`${page.examples.length} live example(s): each policy checks as the page says`, async () => {
        const results = await check(page.examples.map((e) => e.policy), slug(page.relativePath));
        page.examples.forEach((example, i) => {
          const { ok, diagnostics } = results[i];
          const where = `live example at ${example.where}:\n${describeDiagnostics(diagnostics)}`;
          if (example.expectError.length) {
            assert.equal(ok, false, `${where}\nthe page says this policy is rejected, but check accepts it`);
            const errors = diagnostics.filter((d) => d.severity === 'error').map((d) => d.code);
            for (const code of example.expectError) assert.ok(errors.includes(code), `${where}\nexpected error ${code}`);
            for (const code of errors) assert.ok(example.expectError.includes(code), `${where}\nunexpected error ${code}`);
          } else {
            assert.equal(ok, true, `${where}\nthe policy does not pass check`);
            const warnings = diagnostics.map((d) => d.code);
            assert.deepEqual([...new Set(warnings)].sort(), [...new Set(example.expectWarning)].sort(), `${where}\nwarnings differ from the page's expect-warning`);
          }
        });
      });

      test('every live example has calls, each with "now" and "expect", and gets what it expects', async () => {
        for (const example of page.examples) {
          const where = `live example at ${example.where}`;
          if (example.expectError.length) {
            assert.equal(example.calls.length, 0, `${where}: an example of a rejected policy has no calls`);
            continue;
          }
          assert.ok(example.calls.length >= 1, `${where}: no calls (add a \`\`\`jsonl calls block after it)`);
          for (const [i, line] of example.calls.entries()) {
            assert.ok(line && typeof line === 'object' && !Array.isArray(line), `${where}: calls line ${i + 1} is not an object`);
            assert.ok(line.now !== undefined, `${where}: calls line ${i + 1} has no "now" (decisions must not depend on the day the docs are read)`);
            if (!('approve' in line)) assert.ok(line.expect !== undefined, `${where}: calls line ${i + 1} has no "expect"`);
          }
          const file = path.join(scratch, `${slug(page.relativePath)}-eval-${example.index}.json`);
          writeFileSync(file, example.policy);
          const input = example.calls.map((line) => JSON.stringify(line)).join('\n') + '\n';
          const result = await runCli(['eval', '--policy', file], { input });
          const out = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
          assert.equal(out.length, example.calls.length, `${where}: ${result.stderr}`);
          example.calls.forEach((line, i) => {
            if ('approve' in line) assert.deepEqual(out[i], { approved: line.approve }, `${where}: approve line ${i + 1}`);
            else assert.equal(out[i].pass, true, `${where}: call ${i + 1} ${JSON.stringify(line)}\n  got ${JSON.stringify(out[i])}`);
          });
          assert.equal(result.code, 0, `${where}: ${result.stderr}`);
        }
      });
    }

    const policies = page.json.filter((block) => block.content.includes('"version"'));
    if (policies.length) {
      test(`${policies.length} plain json block(s) with "version": each passes check with no diagnostics`, async () => {
        const checked = policies.filter((block) => !block.noCheck);
        for (const block of policies.filter((b) => b.noCheck)) {
          assert.doesNotThrow(() => JSON.parse(block.content), `site/${page.relativePath}:${block.line}: a no-check json block must still be JSON`);
        }
        if (!checked.length) return;
        const results = await check(checked.map((b) => b.content), `${slug(page.relativePath)}-block`);
        checked.forEach((block, i) => {
          const { ok, diagnostics } = results[i];
          assert.ok(ok && diagnostics.length === 0, `site/${page.relativePath}:${block.line}:\n${block.content}\n${describeDiagnostics(diagnostics)}`);
        });
      });
    }
  });
}

// ---------------------------------------------------------------- coverage

// Sections of the reference pages: a heading, its level, and the live examples under it.
function sections(page) {
  const out = [];
  let current = null;
  page.tokens.forEach((token, i) => {
    if (token.type === 'heading_open') {
      current = { level: Number(token.tag.slice(1)), text: page.tokens[i + 1].content, examples: 0, own: 0 };
      out.push(current);
    } else if (token.type === 'fence' && token.meta?.toolgateExample && current) {
      current.own++;
    }
  });
  // A section's examples include its subsections'.
  out.forEach((section, i) => {
    section.examples = section.own;
    for (let j = i + 1; j < out.length && out[j].level > section.level; j++) section.examples += out[j].own;
  });
  return out;
}

const referencePages = pages.filter((page) => page.relativePath.startsWith('reference/'));
const referenceSections = referencePages.flatMap((page) => sections(page).map((section) => ({ ...section, page: page.relativePath })));

function assertCovered(items, where, { exempt = [] } = {}) {
  const missing = [];
  for (const item of items) {
    const headed = referenceSections.filter((s) => s.text.includes(`\`${item}\``) || s.text.includes(`\`"${item}"\``));
    if (!headed.length) {
      missing.push(`${item}: no heading names it`);
      continue;
    }
    if (!exempt.includes(item) && !headed.some((s) => s.examples > 0)) missing.push(`${item}: no live example under its heading (${headed.map((s) => `${s.page} "${s.text}"`).join(', ')})`);
  }
  assert.deepEqual(missing, [], `${where} not covered by site/reference/:\n${missing.join('\n')}`);
}

describe('the policy language reference covers the language', () => {
  const schema = JSON.parse(readFileSync(path.join(repoRoot, 'schema/policy.schema.json'), 'utf8'));
  const defs = schema.$defs;

  test('every document field', () => assertCovered(Object.keys(schema.properties), 'document fields'));
  test('every tool entry field', () => assertCovered(Object.keys(defs.toolEntry.properties), 'tool entry fields'));
  test('every condition field', () => assertCovered([...Object.keys(defs.condition.properties), ...Object.keys(defs.conditionGroup.properties)], 'condition fields'));
  test('every operator', () => assertCovered(defs.operator.enum, 'operators'));
  test('every limit field', () => assertCovered(Object.keys(defs.limit.properties), 'limit fields'));
  test('every window and algorithm', () => assertCovered(['second', 'minute', 'hour', 'day', '10s', '5m', '2h', '1d', 'fixed', 'sliding'], 'windows and algorithms'));
  test('every tool action and scope', () => assertCovered(['allow', 'deny', 'require_approval', 'grant', 'global'], 'actions and scopes'));

  test('every decision code (wasm/index.d.ts)', () => {
    const dts = readFileSync(path.join(repoRoot, 'wasm/index.d.ts'), 'utf8');
    const union = dts.match(/export type DecisionCode =([^;]+);/)[1];
    const codes = [...union.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]);
    assert.ok(codes.length >= 11);
    // store_error comes from a failing counter store, which the in-page memory store never is.
    assertCovered(codes, 'decision codes', { exempt: ['store_error'] });
  });

  test('every diagnostic code (core/README.md)', () => {
    const readme = readFileSync(path.join(repoRoot, 'core/README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Diagnostic codes'), readme.indexOf('## Decision codes'));
    const codes = [...table.matchAll(/^\| `([a-z_]+)` \| (?:error|warning) \|/gm)].map((m) => m[1]);
    assert.ok(codes.length >= 17, `${codes.length} codes`);
    assertCovered(codes, 'diagnostic codes');
    // Each one is shown for real: a live example that check rejects (or warns about) with that code.
    const shown = new Set(referencePages.flatMap((page) => page.examples.flatMap((e) => [...e.expectError, ...e.expectWarning])));
    assert.deepEqual(codes.filter((code) => !shown.has(code)), [], 'diagnostic codes without a live example that produces them');
  });
});

describe('the cookbook', () => {
  test('each recipe page has a live example', () => {
    const recipes = pages.filter((page) => page.relativePath.startsWith('cookbook/') && !page.relativePath.endsWith('index.md'));
    assert.ok(recipes.length >= 6);
    for (const page of recipes) assert.ok(page.examples.length >= 1, `${page.relativePath} has no live example`);
  });

  test('the seed examples are shown from examples/, not copied', () => {
    const sources = new Set(pages.flatMap((page) => page.examples.map((e) => e.policySource && path.relative(repoRoot, e.policySource))).filter(Boolean));
    for (const seed of ['examples/convex-run.json', 'examples/cargo-run.json', 'examples/refunds.json', 'examples/github-push.json', 'examples/approvals.json']) {
      assert.ok(sources.has(seed), `${seed} is not shown by any page`);
    }
  });
});

test('the benchmarks page includes the README figures', () => {
  const page = byPath.get('benchmarks.md');
  const text = page.tokens.map((t) => t.content).join('\n');
  assert.match(text, /decisions\/s/);
});

test('the JS API example on site/api/js.md runs and prints the output the page shows', async () => {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync(process.execPath, [path.join(siteRoot, 'snippets/quickstart.js')], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, readFileSync(path.join(siteRoot, 'snippets/quickstart.out.txt'), 'utf8'));
  const page = readFileSync(path.join(siteRoot, 'api/js.md'), 'utf8');
  assert.match(page, /<<< @\/snippets\/quickstart\.js/);
  assert.match(page, /<<< @\/snippets\/quickstart\.out\.txt/);
});
