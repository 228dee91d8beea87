// The JS API in one file: compile a policy, decide calls with memory stores,
// reserve quota around an upstream call, read a policy's problems.
// Run it from the repository: node site/snippets/quickstart.js
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore, PolicyError } from 'toolgate';

const toolgate = await loadToolgate(); // Node reads the .wasm; a browser fetches it

const policy = toolgate.compile(`{
  "version": "1",
  "default": "deny",
  "tools": {
    "create_refund": {
      "deny_if": [{ "conditions": [{ "path": "args.amount", "op": "gt", "value": 100 },
                                   { "path": "grant.role", "op": "neq", "value": "lead" }],
                    "on_deny": "Refunds over $100 need a lead." }],
      "rate_limit": "2/minute"
    }
  }
}`);

const counters = new MemoryCounterStore();
const approvals = new MemoryApprovalStore();
const now = Date.parse('2026-01-01T00:00:00Z');
const agent = { id: 'agent-1', role: 'support' };

for (const amount of [50, 250, 60, 70]) {
  const call = { tool: 'create_refund', arguments: { amount }, grant: agent };
  const decision = await policy.decide(call, { counters, approvals, now });
  console.log(amount, decision.decision, decision.code, decision.rule, decision.retry_after_ms ?? '');
}

// In a proxy: reserve before forwarding, give the quota back if the server failed.
const later = now + 60_000;
const { decision, commit, rollback } = await policy.authorize(
  { tool: 'create_refund', arguments: { amount: 10 }, grant: agent },
  { counters, approvals, now: later },
);
console.log('authorize', decision.code);
const serverFailed = true;
await (serverFailed ? rollback() : commit());
const again = await policy.decide({ tool: 'create_refund', arguments: { amount: 10 }, grant: agent }, { counters, approvals, now: later });
const third = await policy.decide({ tool: 'create_refund', arguments: { amount: 10 }, grant: agent }, { counters, approvals, now: later });
console.log('after rollback', again.code, third.code);

// A policy with problems: every one of them, with line, column and pointer.
try {
  toolgate.compile('{ "version": "1", "default": "deny", "tools": { "run": { "deny_iff": [] } } }');
} catch (error) {
  if (!(error instanceof PolicyError)) throw error;
  for (const d of error.diagnostics) console.log(`${d.line}:${d.column} ${d.severity} ${d.code} ${d.pointer}`);
}
