// Shared by the Node upstream transport's suites (node-transport.test.js,
// node-transport-engine.test.js).
import { after } from 'node:test';

import { createNodeTransport } from '../../worker/node-transport.js';

/** A transport (worker/node-transport.js) closed when the test file ends. */
export function transportForTest(options) {
  const transport = createNodeTransport(options);
  after(() => transport.close());
  return transport;
}

/** A server-side request's body, as text. */
export async function bodyOf(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}
