// The ApprovalStore conformance suite (wasm/index.d.ts): what every approval
// store must do, as the reference, MemoryApprovalStore (wasm/memory-store.js),
// does it. authorize() relies on approve/isApproved/consume (one approval
// allows one call); the proxy records and lists waiting requests with
// request/get/list/reject.
//
//   import { approvalConformance } from './approval-conformance.js';
//   approvalConformance('MyStore', async () => new MyStore(), { cleanup: async (store) => store.close() });
//
// makeStore is called before each test and must return an empty store (or one
// whose approvals and requests no other test sees); cleanup(store), if given,
// runs after each. Only the interface is used, and every time is the `now`
// the test passes (simulated, far from the wall clock), so a store must decide
// by the caller's clock, as the core does.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const T0 = Date.UTC(2026, 0, 1);
const TIMEOUT = 10 * MINUTE; // the policy default for approval.timeout

// Ids as the core makes them: lowercase hex SHA-256.
const idOf = (n) => n.toString(16).padStart(64, '0');

/** A waiting request as the proxy records one; `fields` override the defaults. */
function requestOf(n, fields = {}) {
  return {
    id: idOf(n),
    grant: 'alice',
    server: 'default',
    tool: 'run',
    arguments: { command: `echo ${n}` },
    message: `Tool "run" requires a human's approval. Approval id: ${idOf(n)}.`,
    requested_at: T0,
    expires_at: T0 + TIMEOUT,
    ...fields,
  };
}

export function approvalConformance(name, makeStore, { cleanup } = {}) {
  describe(`${name}: ApprovalStore conformance`, () => {
    let store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await cleanup?.(store);
    });

    describe('approvals (authorize)', () => {
      test('an approval holds from its approval time up to and including approval time + timeout', async () => {
        const id = idOf(1);
        const at = T0 + MINUTE;
        assert.equal(await store.isApproved(id, TIMEOUT, at), false, 'not approved yet');
        await store.approve(id, at);
        assert.equal(await store.isApproved(id, TIMEOUT, at), true, 'at the approval time');
        assert.equal(await store.isApproved(id, TIMEOUT, at + TIMEOUT - 1), true);
        assert.equal(await store.isApproved(id, TIMEOUT, at + TIMEOUT), true, 'the timeout is inclusive');
        assert.equal(await store.isApproved(id, TIMEOUT, at + TIMEOUT + 1), false, 'past the timeout');
        assert.equal(await store.isApproved(id, TIMEOUT, at - 1), false, 'a call stamped before the approval');
        // The timeout is the caller's (the policy's), not fixed at approval time.
        assert.equal(await store.isApproved(id, 30 * SECOND, at + 31 * SECOND), false);
        assert.equal(await store.isApproved(id, 0, at), true, 'a zero timeout: the approval instant only');
        assert.equal(await store.isApproved(id, 0, at + 1), false);
        assert.equal(await store.isApproved(id, TIMEOUT, at), true, 'isApproved does not use the approval up');
      });

      test('approvals are per id', async () => {
        await store.approve(idOf(1), T0);
        assert.equal(await store.isApproved(idOf(2), TIMEOUT, T0), false);
        assert.equal(await store.consume(idOf(2), TIMEOUT, T0), false);
        assert.equal(await store.isApproved(idOf(1), TIMEOUT, T0), true);
      });

      test('consume uses an approval up: true once, then false', async () => {
        const id = idOf(1);
        assert.equal(await store.consume(id, TIMEOUT, T0), false, 'nothing to consume');
        await store.approve(id, T0);
        assert.equal(await store.consume(id, TIMEOUT, T0 + SECOND), true);
        assert.equal(await store.consume(id, TIMEOUT, T0 + SECOND), false, 'the second call');
        assert.equal(await store.isApproved(id, TIMEOUT, T0 + SECOND), false);
      });

      test('consume is false outside the approval\'s time, and a failed consume leaves it in place', async () => {
        const id = idOf(1);
        await store.approve(id, T0);
        assert.equal(await store.consume(id, TIMEOUT, T0 + TIMEOUT + 1), false, 'expired');
        assert.equal(await store.consume(id, TIMEOUT, T0 - 1), false, 'stamped before the approval');
        assert.equal(await store.consume(id, TIMEOUT, T0 + TIMEOUT), true, 'still there, at the last valid instant');
      });

      test('approving again restarts the clock, and allows one more call', async () => {
        const id = idOf(1);
        await store.approve(id, T0);
        await store.approve(id, T0 + 5 * MINUTE);
        assert.equal(await store.isApproved(id, TIMEOUT, T0 + TIMEOUT + MINUTE), true, 'counted from the second approval');
        assert.equal(await store.consume(id, TIMEOUT, T0 + TIMEOUT + MINUTE), true);
        assert.equal(await store.consume(id, TIMEOUT, T0 + TIMEOUT + MINUTE), false, 'two approvals of one id are not two calls');
        await store.approve(id, T0 + TIMEOUT + 2 * MINUTE);
        assert.equal(await store.consume(id, TIMEOUT, T0 + TIMEOUT + 2 * MINUTE), true, 'approved after use: one more call');
      });

      test('two concurrent consumes of one approval: exactly one is true', async () => {
        const id = idOf(1);
        await store.approve(id, T0);
        const results = await Promise.all([store.consume(id, TIMEOUT, T0), store.consume(id, TIMEOUT, T0)]);
        assert.deepEqual(results.sort(), [false, true]);
      });

      test('50 concurrent consumes of each of 10 approvals: exactly one per approval', async () => {
        const ids = Array.from({ length: 10 }, (_, i) => idOf(i + 1));
        await Promise.all(ids.map((id) => store.approve(id, T0)));
        const attempts = ids.flatMap((id) => Array.from({ length: 50 }, () => store.consume(id, TIMEOUT, T0 + SECOND).then((ok) => ({ id, ok }))));
        const results = await Promise.all(attempts);
        for (const id of ids) {
          assert.equal(results.filter((r) => r.id === id && r.ok).length, 1, `approval ${id}`);
        }
      });

      test('an id can be approved with no request waiting (approved ahead of the call)', async () => {
        await store.approve(idOf(7), T0);
        assert.equal(await store.get(idOf(7), T0), null);
        assert.equal(await store.consume(idOf(7), TIMEOUT, T0 + SECOND), true);
      });
    });

    describe('waiting requests (the proxy)', () => {
      test('a request round-trips every field, nested arguments and unicode included', async () => {
        const request = requestOf(1, {
          grant: 'ałice 👩‍💻',
          server: 'files-ü',
          tool: 'write_file',
          arguments: {
            path: '/tmp/日本語/ファイル.txt',
            content: 'line 1\nline 2\t"quoted" \\ back\u0000nul \u2028 \ud83d\ude00',
            options: { mode: 0o644, overwrite: false, tags: ['a', 'ß', '', null], nested: { deeper: { deepest: [1, [2, [3.5, -0.25, 1e21]]] } } },
            empty: {},
            list: [],
            '': 'empty key',
            'key with "quotes" and {braces}': true,
          },
          message: 'Tool "write_file" requires a human\'s approval. Ünïcödé ✓',
          requested_at: T0 + 123,
          expires_at: T0 + 123 + TIMEOUT,
        });
        const original = structuredClone(request);
        await store.request(request);
        assert.deepEqual(await store.get(request.id, T0 + 123), original);
        assert.deepEqual(await store.list(T0 + 123), [original]);
      });

      test('the store keeps its own copy: changing what went in or came out changes nothing', async () => {
        const request = requestOf(1);
        await store.request(request);
        request.arguments.command = 'rm -rf /';
        request.tool = 'other';
        const got = await store.get(idOf(1), T0);
        assert.deepEqual(got, requestOf(1));
        got.arguments.command = 'changed';
        assert.deepEqual(await store.get(idOf(1), T0), requestOf(1));
        const [listed] = await store.list(T0);
        listed.grant = 'mallory';
        assert.deepEqual(await store.list(T0), [requestOf(1)]);
      });

      test('request() keeps the first request of an id (a retry does not move it down the list)', async () => {
        await store.request(requestOf(1));
        await store.request(requestOf(2, { requested_at: T0 + SECOND }));
        await store.request(requestOf(1, { requested_at: T0 + 2 * SECOND, expires_at: T0 + 2 * TIMEOUT, message: 'again', arguments: { x: 1 } }));
        assert.deepEqual(await store.get(idOf(1), T0 + 3 * SECOND), requestOf(1));
        assert.deepEqual((await store.list(T0 + 3 * SECOND)).map((r) => r.id), [idOf(1), idOf(2)]);
      });

      test('concurrent requests of one id: one of them is kept, whole', async () => {
        const versions = Array.from({ length: 20 }, (_, i) => requestOf(1, { message: `version ${i}`, arguments: { i }, requested_at: T0 + i }));
        await Promise.all(versions.map((request) => store.request(request)));
        const kept = await store.get(idOf(1), T0 + 20);
        assert.ok(versions.some((version) => isDeepStrictEqual(kept, version)), `one of the versions, not ${JSON.stringify(kept)}`);
        assert.equal((await store.list(T0 + 20)).length, 1);
      });

      test('get() is null for an unknown id', async () => {
        assert.equal(await store.get(idOf(1), T0), null);
        await store.request(requestOf(2));
        assert.equal(await store.get(idOf(1), T0), null);
      });

      test('a request expires at expires_at: get() is null from then on', async () => {
        await store.request(requestOf(1));
        assert.deepEqual(await store.get(idOf(1), T0 + TIMEOUT - 1), requestOf(1), 'the last waiting millisecond');
        assert.equal(await store.get(idOf(1), T0 + TIMEOUT), null, 'expires_at itself is expired');
        assert.equal(await store.get(idOf(1), T0 + TIMEOUT + MINUTE), null);
      });

      test('list() is oldest first, ties broken by id, expired requests left out', async () => {
        assert.deepEqual(await store.list(T0), [], 'nothing waiting');
        const requests = [
          requestOf(5, { requested_at: T0 + 3 * SECOND }),
          requestOf(3, { requested_at: T0 + SECOND }),
          requestOf(4, { requested_at: T0 + SECOND }), // the same time as 3: by id
          requestOf(2, { requested_at: T0 + 2 * SECOND, expires_at: T0 + 30 * SECOND }), // expires first
          requestOf(1, { requested_at: T0 + 4 * SECOND }),
          requestOf(0xabc, { requested_at: T0 + SECOND }), // id ...abc sorts after ...003 and ...004
        ];
        for (const request of requests) await store.request(request);
        const order = (list) => list.map((r) => r.id);
        assert.deepEqual(order(await store.list(T0 + 5 * SECOND)), [idOf(3), idOf(4), idOf(0xabc), idOf(2), idOf(5), idOf(1)]);
        assert.deepEqual(order(await store.list(T0 + 30 * SECOND)), [idOf(3), idOf(4), idOf(0xabc), idOf(5), idOf(1)], 'request 2 expired');
        assert.deepEqual(await store.list(T0 + 5 * SECOND + TIMEOUT), [], 'all expired');
      });

      test('list() breaks ties by UTF-16 code units, as JavaScript compares strings (not by UTF-8 bytes)', async () => {
        // U+10000 is a surrogate pair (D800 DC00): before U+E000 in UTF-16, after it in UTF-8.
        const ids = ['\u{E000}', '\u{10000}', 'z', 'Z', 'é'];
        for (const id of ids) await store.request(requestOf(1, { id }));
        assert.deepEqual((await store.list(T0)).map((r) => r.id), ['Z', 'z', 'é', '\u{10000}', '\u{E000}']);
      });

      test('list() of many requests made in random order is sorted', async () => {
        const requests = Array.from({ length: 60 }, (_, i) => requestOf(i + 1, { requested_at: T0 + ((i * 37) % 20) * SECOND }));
        await Promise.all(requests.map((request) => store.request(request)));
        const listed = await store.list(T0 + MINUTE);
        assert.equal(listed.length, 60);
        const expected = [...requests].sort((a, b) => a.requested_at - b.requested_at || (a.id < b.id ? -1 : 1));
        assert.deepEqual(listed, expected);
      });

      test('approve() removes the waiting request, and a later request of the same call waits again', async () => {
        await store.request(requestOf(1));
        await store.request(requestOf(2));
        await store.approve(idOf(1), T0 + SECOND);
        assert.equal(await store.get(idOf(1), T0 + SECOND), null, 'decided');
        assert.deepEqual((await store.list(T0 + SECOND)).map((r) => r.id), [idOf(2)]);
        assert.equal(await store.reject(idOf(1), T0 + SECOND), false, 'no longer waiting');
        assert.equal(await store.isApproved(idOf(1), TIMEOUT, T0 + SECOND), true, 'reject() of a decided request leaves the approval');
        // The approved call runs; the agent makes the same call again later.
        assert.equal(await store.consume(idOf(1), TIMEOUT, T0 + 2 * SECOND), true);
        const again = requestOf(1, { requested_at: T0 + MINUTE, expires_at: T0 + MINUTE + TIMEOUT });
        await store.request(again);
        assert.deepEqual(await store.get(idOf(1), T0 + MINUTE), again);
      });

      test('reject() is true only for a waiting request, drops it, and approves nothing', async () => {
        assert.equal(await store.reject(idOf(1), T0), false, 'unknown');
        await store.request(requestOf(1));
        await store.request(requestOf(2));
        assert.equal(await store.reject(idOf(1), T0 + SECOND), true);
        assert.equal(await store.reject(idOf(1), T0 + SECOND), false, 'already rejected');
        assert.equal(await store.get(idOf(1), T0 + SECOND), null, 'decided');
        assert.deepEqual((await store.list(T0 + SECOND)).map((r) => r.id), [idOf(2)]);
        assert.equal(await store.isApproved(idOf(1), TIMEOUT, T0 + SECOND), false);
        assert.equal(await store.consume(idOf(1), TIMEOUT, T0 + SECOND), false);
        // The agent asks again: a new request waits.
        const again = requestOf(1, { requested_at: T0 + MINUTE, expires_at: T0 + MINUTE + TIMEOUT });
        await store.request(again);
        assert.deepEqual(await store.get(idOf(1), T0 + MINUTE), again);
      });

      test('reject() of an expired request is false', async () => {
        await store.request(requestOf(1));
        assert.equal(await store.reject(idOf(1), T0 + TIMEOUT), false);
        assert.equal(await store.get(idOf(1), T0 + TIMEOUT), null);
      });

      test('a request made again once the first one expired waits again', async () => {
        await store.request(requestOf(1));
        assert.deepEqual(await store.list(T0 + TIMEOUT), [], 'the first one expired');
        const again = requestOf(1, { requested_at: T0 + TIMEOUT + SECOND, expires_at: T0 + 2 * TIMEOUT + SECOND });
        await store.request(again);
        assert.deepEqual(await store.get(idOf(1), T0 + TIMEOUT + SECOND), again);
        assert.deepEqual(await store.list(T0 + TIMEOUT + SECOND), [again]);
      });

      test('requests and approvals are separate: a waiting request is not an approval', async () => {
        await store.request(requestOf(1));
        assert.equal(await store.isApproved(idOf(1), TIMEOUT, T0), false);
        assert.equal(await store.consume(idOf(1), TIMEOUT, T0), false);
        assert.deepEqual(await store.get(idOf(1), T0), requestOf(1), 'a failed consume leaves the request waiting');
      });
    });
  });
}
