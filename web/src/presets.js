// The playground's presets: the example policies with their policy tests
// (examples/NAME.json + examples/NAME.calls.jsonl), imported as text so the
// editor shows them exactly as written.
import convexRunPolicy from '../../examples/convex-run.json?raw';
import convexPolicy from '../../examples/convex.json?raw';
import convexCalls from '../../examples/convex.calls.jsonl?raw';
import cargoRunPolicy from '../../examples/cargo-run.json?raw';
import cargoRunCalls from '../../examples/cargo-run.calls.jsonl?raw';
import refundsPolicy from '../../examples/refunds.json?raw';
import refundsCalls from '../../examples/refunds.calls.jsonl?raw';
import githubPushPolicy from '../../examples/github-push.json?raw';
import githubPushCalls from '../../examples/github-push.calls.jsonl?raw';
import approvalsPolicy from '../../examples/approvals.json?raw';
import approvalsCalls from '../../examples/approvals.calls.jsonl?raw';

/** Parses JSON Lines into objects; a malformed line is kept as its text (it evaluates as invalid_call). */
export function parseJsonLines(text) {
  const lines = [];
  for (const line of String(text).split(/\r?\n/)) {
    if (!line.trim()) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      lines.push(line);
    }
  }
  return lines;
}

// The spec's example has no calls file: ten runs a minute per grant.
const convexRunCalls = [
  ...Array.from({ length: 10 }, (_, i) => ({
    tool: 'run',
    arguments: { functionName: 'messages:list' },
    grant: 'alice',
    now: `2026-01-01T00:00:${String(i * 5).padStart(2, '0')}Z`,
    expect: { decision: 'allow', code: 'allowed' },
  })),
  { tool: 'run', arguments: { functionName: 'messages:list' }, grant: 'alice', now: '2026-01-01T00:00:55Z', expect: { decision: 'deny', code: 'rate_limited', rule: '/tools/run/limits/0' } },
  { tool: 'run', arguments: { functionName: 'messages:list' }, grant: 'bob', now: '2026-01-01T00:00:56Z', expect: { decision: 'allow', code: 'allowed' } },
  { tool: 'run', arguments: { functionName: 'messages:list' }, grant: 'alice', now: '2026-01-01T00:01:00Z', expect: { decision: 'allow', code: 'allowed' } },
  { tool: 'envSet', arguments: { name: 'KEY' }, grant: 'alice', now: '2026-01-01T00:01:01Z', expect: { decision: 'deny', code: 'default_deny', rule: '/default' } },
];

export const PRESETS = {
  'convex-run': { label: 'Convex run: 10/minute per grant', policy: convexRunPolicy, calls: convexRunCalls },
  convex: { label: 'Convex MCP server (all tools)', policy: convexPolicy, calls: parseJsonLines(convexCalls) },
  'cargo-run': { label: 'Cargo run: workspace only', policy: cargoRunPolicy, calls: parseJsonLines(cargoRunCalls) },
  refunds: { label: 'Stripe-style refunds', policy: refundsPolicy, calls: parseJsonLines(refundsCalls) },
  'github-push': { label: 'GitHub: no force-push to main', policy: githubPushPolicy, calls: parseJsonLines(githubPushCalls) },
  approvals: { label: 'Approvals: production deploys', policy: approvalsPolicy, calls: parseJsonLines(approvalsCalls) },
};

export const DEFAULT_PRESET = 'convex-run';
