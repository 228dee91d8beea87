// One side of the comparison (toolgate or Cedar) in its own worker thread,
// so its own V8 isolate: cedar.bench.js drives both workers in turn. Mixing
// toolgate's and cedar-wasm's hot loops in one isolate crashes Node 20.20's V8
// (see README.md), and separate isolates also keep one side's JIT feedback and
// garbage out of the other's timings.
import { parentPort, workerData } from 'node:worker_threads';
import { loadToolgate, MemoryCounterStore } from '../../wasm/index.js';
import { cases as makeCases, typicalWithLimit, typicalCall } from './cases.js';
import { loadCedar } from './cedar-load.js';

const { side, tools } = workerData;
const cases = new Map(makeCases({ tools }).map((c) => [c.id, c]));
const lib = side === 'toolgate' ? await loadToolgate() : await loadCedar();
const prepared = new Map();

function prepare(id) {
  const c = cases.get(id);
  if (side === 'toolgate') {
    prepared.set(id, lib.compile(JSON.stringify(c.toolgate)));
  } else {
    const r = lib.preparsePolicySet(id, { staticPolicies: c.cedar });
    if (r.type !== 'success') throw new Error(`${id}: Cedar policy does not parse: ${JSON.stringify(r.errors)}`);
    prepared.set(id, id);
  }
}

// The timed function: JS object in, decision out.
function decider(id, index) {
  const k = cases.get(id).calls[index];
  if (side === 'toolgate') {
    const policy = prepared.get(id);
    const call = k.toolgate;
    return () => policy.evaluate(call).decision;
  }
  const request = { ...k.cedar, preparsedPolicySetId: id };
  return () => lib.statefulIsAuthorized(request).response.decision;
}

// The full answer, for checking.
function answer(id, index) {
  const k = cases.get(id).calls[index];
  if (side === 'toolgate') {
    const d = prepared.get(id).evaluate(k.toolgate);
    return { decision: d.pending ? 'pending' : d.decision, code: d.code, errors: [] };
  }
  const a = lib.statefulIsAuthorized({ ...k.cedar, preparsedPolicySetId: id });
  if (a.type !== 'success') return { decision: `failure: ${a.errors.map((e) => e.message).join('; ')}`, errors: a.errors };
  return { decision: a.response.decision, errors: a.response.diagnostics.errors };
}

function batchTimes(fn, batches, batch) {
  const samples = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / batch);
  }
  return samples;
}

function estimate(fn) {
  let n = 0;
  const start = process.hrtime.bigint();
  while (n < 5 || (n < 200 && Number(process.hrtime.bigint() - start) < 20e6)) {
    fn();
    n++;
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

function compileTimes(id, runs) {
  const c = cases.get(id);
  const text = side === 'toolgate' ? JSON.stringify(c.toolgate) : c.cedar;
  const once = side === 'toolgate'
    ? () => lib.compile(text).dispose()
    : () => {
      const r = lib.preparsePolicySet('compile_bench', { staticPolicies: text });
      if (r.type !== 'success') throw new Error('pre-parse failed');
    };
  once(); // warm up
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    once();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times;
}

async function decideWithLimits({ batches, batch }) {
  const policy = lib.compile(typicalWithLimit);
  const counters = new MemoryCounterStore();
  const first = await policy.decide(typicalCall, { counters });
  const pending = policy.evaluate(typicalCall);
  const fn = () => policy.decide(typicalCall, { counters });
  for (let i = 0; i < batches / 10; i++) for (let j = 0; j < batch; j++) await fn();
  const samples = [];
  for (let i = 0; i < batches; i++) {
    const start = process.hrtime.bigint();
    for (let j = 0; j < batch; j++) await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / batch);
  }
  policy.dispose();
  return { decision: first.decision, code: first.code, pending: !!pending.pending, samples };
}

const ops = {
  info: () => (side === 'toolgate' ? { version: lib.version } : { version: lib.getCedarVersion(), lang: lib.getCedarLangVersion() }),
  prepare: ({ id }) => prepare(id),
  answer: ({ id, index }) => answer(id, index),
  estimate: ({ id, index }) => estimate(decider(id, index)),
  run: ({ id, index, batches, batch }) => batchTimes(decider(id, index), batches, batch),
  compile: ({ id, runs }) => compileTimes(id, runs),
  release: ({ id }) => {
    if (side === 'toolgate') prepared.get(id)?.dispose();
    prepared.delete(id);
  },
  limits: (sizes) => decideWithLimits(sizes),
};

parentPort.on('message', async ({ seq, op, args }) => {
  try {
    parentPort.postMessage({ seq, result: await ops[op](args) });
  } catch (error) {
    parentPort.postMessage({ seq, error: String(error?.stack ?? error) });
  }
});
parentPort.postMessage({ ready: true });
