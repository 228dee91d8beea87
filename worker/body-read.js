// A request body's bytes as JSON-RPC messages: what the handler does with
// every POST body before the gate, runtime-neutral (Workers, Node). On Node,
// bodies above a size are read the same way on a worker thread
// (./body-pool.js), which calls this very function: the answers and errors
// are the same either way.
import { JsonRpcError, errorMessage, readMessages } from './gate.js';

// fatal: invalid UTF-8 is refused, not replaced by U+FFFD (a replacement
// would let two different bodies read as one). A leading BOM is dropped, as
// TextDecoder does by default.
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * `bytes` (UTF-8 JSON text) as messages, or the JSON-RPC error that refuses
 * the whole body (./gate.js readMessages: not JSON, an empty or oversized
 * batch, duplicate keys, nesting over 256).
 * @param {Uint8Array} bytes
 * @param {{ maxBatchSize?: number }} [options]
 * @returns {{ refused: object } | { batch: boolean, messages: unknown[] }}
 */
export function readBodyMessages(bytes, { maxBatchSize = Infinity } = {}) {
  let text;
  try {
    text = strictUtf8.decode(bytes);
  } catch (error) {
    return { refused: errorMessage(null, JsonRpcError.PARSE, `Parse error: the body is not valid UTF-8 (${error.message}).`) };
  }
  return readMessages(text, { maxBatchSize });
}
