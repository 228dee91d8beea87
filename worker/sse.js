// Server-Sent Events in the proxy: upstream streams are read event by event,
// each JSON-RPC message is shown to the gate (which may rewrite it: hidden tools
// leave tools/list results), and the event goes on at once. Nothing waits for
// the end of the stream, so long-running tool calls stream as they did.
import { createParser } from 'eventsource-parser';

const encoder = new TextEncoder();

/** One SSE event as text. Multi-line data becomes one data: field per line. */
export function encodeEvent({ id, event, data }) {
  let text = '';
  if (event !== undefined) text += `event: ${event}\n`;
  if (id !== undefined) text += `id: ${id}\n`;
  for (const line of String(data).split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return `${text}\n`;
}

/**
 * A readable stream of `upstream`'s events, each message passed through
 * `onMessage(message)` (which returns the message to send on), preceded by
 * `prefix` (local answers, sent first). `onEnd(reason)` runs once when the
 * stream ends ('end'), fails ('error') or the client goes away ('cancel').
 * Events over maxEventBytes end the stream with an error.
 */
export function transformEventStream(upstream, { prefix = [], onMessage, onEnd = () => {}, maxEventBytes = 16 * 1024 * 1024 }) {
  let ended = false;
  const end = (reason) => {
    if (ended) return;
    ended = true;
    onEnd(reason);
  };
  let controller;
  let failure = null;
  const parser = createParser({
    maxBufferSize: maxEventBytes,
    onEvent(event) {
      controller.enqueue(encoder.encode(encodeEvent({ ...event, data: rewrite(event.data, onMessage) })));
    },
    onRetry(ms) {
      controller.enqueue(encoder.encode(`retry: ${ms}\n\n`));
    },
    onComment(comment) {
      // Comments keep idle connections open through intermediaries.
      controller.enqueue(encoder.encode(`:${comment}\n\n`));
    },
    onError(error) {
      if (error.type === 'max-buffer-size-exceeded') failure = error;
    },
  });
  const reader = upstream.pipeThrough(new TextDecoderStream()).getReader();
  return new ReadableStream({
    start(c) {
      controller = c;
      for (const message of prefix) c.enqueue(encoder.encode(encodeEvent({ event: 'message', data: JSON.stringify(message) })));
    },
    async pull(c) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          parser.feed('\n\n'); // a last event without its blank line still counts
          end('end');
          c.close();
          return;
        }
        parser.feed(value);
        if (failure) throw new Error(`an upstream event exceeds ${maxEventBytes} bytes`);
      } catch (error) {
        end('error');
        reader.cancel(error).catch(() => {});
        c.error(error);
      }
    },
    cancel(reason) {
      end('cancel');
      return reader.cancel(reason);
    },
  });
}

// An event's data is one JSON-RPC message or a batch; anything else (not
// JSON) passes unchanged: the gate only acts on messages it can read.
function rewrite(data, onMessage) {
  let parsed;
  try {
    parsed = JSON.parse(data);
  } catch {
    return data;
  }
  if (Array.isArray(parsed)) {
    const next = parsed.map((message) => onMessage(message));
    return next.every((message, i) => message === parsed[i]) ? data : JSON.stringify(next);
  }
  const next = onMessage(parsed);
  return next === parsed ? data : JSON.stringify(next);
}
