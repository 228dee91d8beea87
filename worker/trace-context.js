// W3C Trace Context (https://www.w3.org/TR/trace-context/) for the proxy: the
// client's `traceparent` (HTTP header, or the MCP request's `params._meta`)
// is kept and passed upstream, in the header and in `_meta`, so a call can be
// followed from agent to tool. No dependency: the runtime-neutral part.
// toolgate's own span (./otel.js) plugs in as a `tracer`.

// version 00 as the spec writes it; other versions are read by their first
// four fields (the spec's forward compatibility), never version ff.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * The parts of a valid traceparent, or null: an invalid one is dropped (the
 * spec's rule: a receiver starts afresh rather than pass garbage on).
 * @returns {{traceId: string, spanId: string, flags: number} | null}
 */
export function parseTraceparent(value) {
  if (typeof value !== 'string' || value.length > 512) return null;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, flags: Number.parseInt(flags, 16) };
}

export const formatTraceparent = ({ traceId, spanId, flags }) => `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;

// tracestate: at most 32 list members of printable ASCII (the spec's limits);
// anything else is dropped rather than passed on.
export function cleanTracestate(value) {
  if (typeof value !== 'string' || value.length > 512 || !/^[\x20-\x7e]*$/.test(value)) return null;
  return value.split(',').length <= 32 ? value : null;
}

/**
 * The trace context of one tools/call: the client's (its _meta first, then
 * the request's header), and the span toolgate opens for it when a tracer is
 * set. `upstream` is what the server is sent: toolgate's span when it records
 * one, else the client's traceparent unchanged.
 * @param {{start(fields: object): {traceparent?: string, end(fields: object): void}} | undefined} tracer
 */
export function callTrace(tracer, { header, meta, server, tool, grant }) {
  const fromMeta = parseTraceparent(meta);
  const parent = fromMeta ?? parseTraceparent(header);
  let span;
  try {
    span = tracer?.start({ parent, server, tool, grant });
  } catch {
    span = undefined; // tracing never fails a call
  }
  return {
    parent,
    upstream: span?.traceparent ?? (parent ? formatTraceparent(parent) : null),
    end(fields) {
      try {
        span?.end(fields);
      } catch {
        // tracing never fails a call
      }
    },
  };
}
