// The policy pairs of the Cedar comparison: each case is one toolgate policy
// and one Cedar policy set meant to decide alike, with the calls both sides
// are timed on and the decision each must give. bench/cedar/README.md shows
// the same policies for readers; cedar.bench.js checks every decision before
// it times anything.
//
// Mapping of a toolgate call to a Cedar request (what an embedding user writes):
//   grant      -> principal Grant::"<grant.id>", its other attributes as the
//                 entity's attrs (passed in `entities`, as Cedar expects)
//   tool       -> action Action::"<tool>"
//   (server)   -> resource Server::"default" (toolgate's name for a single upstream)
//   arguments  -> context { args: <arguments> }

import { T0, typicalCall as sharedTypicalCall, typicalPolicy } from '../js/policies.js';

export { T0 };

// The "typical call" of the budgets (bench/js/policies.js): 5 arguments.
export const typicalArguments = sharedTypicalCall.arguments;
// Its policy's rules without the limit: the stateless part Cedar can express.
const { limits: _typicalLimits, ...typicalRules } = typicalPolicy.tools.create_refund;
const support = { id: 'alice', role: 'support' };

/** A toolgate call and the Cedar request it corresponds to. */
export function call(tool, args, grant) {
  const g = typeof grant === 'string' ? { id: grant } : grant;
  const { id, ...attrs } = g;
  return {
    toolgate: { tool, arguments: args, grant, now: T0 },
    cedar: {
      principal: { type: 'Grant', id },
      action: { type: 'Action', id: tool },
      resource: { type: 'Server', id: 'default' },
      context: { args },
      entities: Object.keys(attrs).length ? [{ uid: { type: 'Grant', id }, attrs, parents: [] }] : [],
    },
  };
}

function toolsPolicy(count) {
  const tools = {};
  for (let i = 0; i < count; i++) tools[`tool_${i}`] = { require: [{ path: 'args.n', op: 'lte', value: i }] };
  return { version: '1', default: 'deny', tools };
}

function toolsCedar(count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    out.push(`permit(principal, action == Action::"tool_${i}", resource) when { context.args.n <= ${i} };`);
  }
  return out.join('\n');
}

/**
 * @param {{ tools?: number }} [options] tools: size of case d (default 1000)
 * @returns {Array<{ id: string, title: string, toolgate: object, cedar: string,
 *   calls: Array<{ name: string, expected: 'allow'|'deny', code: string, toolgate: object, cedar: object }> }>}
 */
export function cases({ tools = 1000 } = {}) {
  const mid = Math.floor(tools / 2);
  return [
    {
      id: 'a1_grant_id',
      title: 'a. grant may call tool (by grant id)',
      toolgate: { version: '1', default: 'deny', tools: { run: { require: [{ path: 'grant.id', op: 'eq', value: 'alice' }] } } },
      cedar: 'permit(principal == Grant::"alice", action == Action::"run", resource);',
      calls: [
        { name: 'alice calls run', expected: 'allow', code: 'allowed', ...call('run', {}, 'alice') },
        { name: 'bob calls run', expected: 'deny', code: 'requirement_failed', ...call('run', {}, 'bob') },
      ],
    },
    {
      id: 'a2_grant_role',
      title: 'a. grant may call tool (by grant role)',
      toolgate: { version: '1', default: 'deny', tools: { run: { require: [{ path: 'grant.role', op: 'eq', value: 'ci' }] } } },
      cedar: 'permit(principal, action == Action::"run", resource) when { principal.role == "ci" };',
      calls: [
        { name: 'role ci calls run', expected: 'allow', code: 'allowed', ...call('run', {}, { id: 'build', role: 'ci' }) },
        { name: 'role support calls run', expected: 'deny', code: 'requirement_failed', ...call('run', {}, support) },
      ],
    },
    {
      id: 'b1_tool_denied',
      title: 'b. tool denied, default deny',
      toolgate: { version: '1', default: 'deny', tools: { run: {}, delete_repo: { action: 'deny' } } },
      cedar: [
        'permit(principal, action == Action::"run", resource);',
        'forbid(principal, action == Action::"delete_repo", resource);',
      ].join('\n'),
      calls: [
        { name: 'denied tool', expected: 'deny', code: 'tool_denied', ...call('delete_repo', {}, 'alice') },
        { name: 'unlisted tool', expected: 'deny', code: 'default_deny', ...call('unknown_tool', {}, 'alice') },
        { name: 'listed tool', expected: 'allow', code: 'allowed', ...call('run', {}, 'alice') },
      ],
    },
    {
      id: 'b2_tool_denied_default_allow',
      title: 'b. tool denied, default allow',
      toolgate: { version: '1', default: 'allow', tools: { delete_repo: { action: 'deny' } } },
      cedar: [
        'permit(principal, action, resource);',
        'forbid(principal, action == Action::"delete_repo", resource);',
      ].join('\n'),
      calls: [
        { name: 'denied tool', expected: 'deny', code: 'tool_denied', ...call('delete_repo', {}, 'alice') },
        { name: 'other tool', expected: 'allow', code: 'allowed', ...call('run', {}, 'alice') },
      ],
    },
    {
      id: 'c1_numeric',
      title: 'c. numeric argument condition (amount <= 500)',
      toolgate: { version: '1', default: 'deny', tools: { create_refund: { require: [{ path: 'args.amount', op: 'lte', value: 500 }] } } },
      cedar: 'permit(principal, action == Action::"create_refund", resource) when { context.args.amount <= 500 };',
      calls: [
        { name: 'typical call, amount 120', expected: 'allow', code: 'allowed', ...call('create_refund', typicalArguments, support) },
        { name: 'amount 900', expected: 'deny', code: 'requirement_failed', ...call('create_refund', { ...typicalArguments, amount: 900 }, support) },
      ],
    },
    {
      id: 'c2_typical',
      title: 'c. typical call: 5 arguments, 3 conditions (no limit)',
      // bench/js/policies.js's typical policy without its limit.
      toolgate: { version: '1', default: 'deny', tools: { create_refund: typicalRules } },
      // `has` keeps toolgate's meaning when a path is missing (the condition is
      // false, so deny_if does not deny), where Cedar would otherwise error and deny.
      cedar: [
        'permit(principal, action == Action::"create_refund", resource)',
        'when { ["usd", "eur"].contains(context.args.currency) }',
        'unless { context.args has amount && context.args.amount > 500 &&',
        '         principal has role && principal.role != "admin" };',
      ].join('\n'),
      calls: [
        { name: 'typical call, amount 120', expected: 'allow', code: 'allowed', ...call('create_refund', typicalArguments, support) },
        { name: 'amount 900, role support', expected: 'deny', code: 'condition_denied', ...call('create_refund', { ...typicalArguments, amount: 900 }, support) },
      ],
    },
    {
      id: 'd_many_tools',
      title: `d. ${tools} tools, each with a condition`,
      toolgate: toolsPolicy(tools),
      cedar: toolsCedar(tools),
      calls: [
        { name: `tool_${mid}, n = 100`, expected: 'allow', code: 'allowed', ...call(`tool_${mid}`, { n: 100 }, 'alice') },
        { name: `tool_${mid}, n = ${tools + 100}`, expected: 'deny', code: 'requirement_failed', ...call(`tool_${mid}`, { n: tools + 100 }, 'alice') },
      ],
    },
  ];
}

/** The typical policy with its limit, for "toolgate with limits (Cedar has none)". */
export const typicalWithLimit = typicalPolicy;
export const typicalCall = call('create_refund', typicalArguments, support).toolgate;

/** A Cedar schema for case c (tried to see whether a pre-parsed schema makes Cedar faster). */
export const refundSchema = `
entity Grant { role?: String };
entity Server;
action create_refund appliesTo {
  principal: Grant,
  resource: Server,
  context: { args: { amount: Long, currency: String, charge: String, reason: String, notify: Bool } }
};`;
