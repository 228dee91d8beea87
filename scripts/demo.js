// npm run demo: evaluates the example policies against
// their example calls on the WebAssembly core and prints what toolgate decided.
import { readFile, readdir } from 'node:fs/promises';
import { loadToolgate, MemoryApprovalStore, MemoryCounterStore } from '../wasm/index.js';

process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const examples = new URL('../examples/', import.meta.url);
const color = process.stdout.isTTY ? (code, text) => `\x1b[${code}m${text}\x1b[0m` : (_, text) => text;
const shade = { allow: 32, deny: 31, approval_required: 33 };

const toolgate = await loadToolgate();
console.log(`toolgate ${toolgate.version}: policy decisions for AI agents' MCP tool calls\n`);

const names = (await readdir(examples)).filter((f) => f.endsWith('.calls.jsonl')).sort();
for (const callsFile of names) {
  const name = callsFile.replace('.calls.jsonl', '');
  const policy = toolgate.compile(await readFile(new URL(`${name}.json`, examples), 'utf8'), { source: `examples/${name}.json` });
  const description = JSON.parse(policy.source).description;
  console.log(color(1, `examples/${name}.json`) + (description ? `: ${description}` : ''));
  const counters = new MemoryCounterStore();
  const approvals = new MemoryApprovalStore();
  const lines = (await readFile(new URL(callsFile, examples), 'utf8')).split('\n').filter(Boolean);
  for (const line of lines) {
    const input = JSON.parse(line);
    if (input.approve) {
      await approvals.approve(input.approve, toolgate.parseTime(input.now));
      console.log(`  ${color(36, 'a human approves')} ${input.approve.slice(0, 12)}…`);
      continue;
    }
    const { expect, ...call } = input;
    const decision = await policy.decide(call, { counters, approvals });
    const grant = typeof call.grant === 'object' ? call.grant.id : call.grant ?? 'anonymous';
    const args = JSON.stringify(call.arguments ?? {});
    const verdict = color(shade[decision.decision], decision.decision.padEnd(17));
    console.log(`  ${grant.padEnd(12)} ${call.tool.padEnd(16)} ${verdict} ${decision.code.padEnd(19)} ${decision.rule}`);
    console.log(color(2, `  ${''.padEnd(12)} ${(args.length > 60 ? `${args.slice(0, 57)}...` : args).padEnd(16)} ${decision.message}`));
  }
  console.log();
}
console.log(`Try your own: npx toolgate check POLICY.json
               npx toolgate eval --policy examples/refunds.json < examples/refunds.calls.jsonl`);
