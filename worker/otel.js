// toolgate's own span for each tools/call, with OpenTelemetry's API
// (@opentelemetry/api). The API alone records nothing: spans are exported
// only when the process registers an SDK (for `toolgate serve`, e.g.
// `NODE_OPTIONS="--import ./tracing.mjs"` with @opentelemetry/sdk-node), and
// until then the client's traceparent is passed upstream unchanged
// (./trace-context.js). With an SDK, the span is a child of the client's
// traceparent and the server is sent the span's own traceparent.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, isSpanContextValid, trace } from '@opentelemetry/api';

import { formatTraceparent } from './trace-context.js';

/**
 * A tracer for createHandler's `tracer` option.
 * @param {{tracer?: import('@opentelemetry/api').Tracer}} [options] default: the global provider's "toolgate" tracer
 */
export function openTelemetryTracer({ tracer } = {}) {
  const spans = tracer ?? trace.getTracer('toolgate');
  return {
    start({ parent, server, tool, grant }) {
      const context = parent
        ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.flags, isRemote: true })
        : ROOT_CONTEXT;
      const name = typeof tool === 'string' ? tool.slice(0, 128) : '';
      const span = spans.startSpan(`tools/call ${name}`, {
        kind: SpanKind.SERVER,
        attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': name, 'toolgate.server': server, 'toolgate.grant': grant },
      }, context);
      const own = span.spanContext();
      const recording = span.isRecording() && isSpanContextValid(own);
      return {
        traceparent: recording ? formatTraceparent({ traceId: own.traceId, spanId: own.spanId, flags: own.traceFlags }) : undefined,
        end({ decision, code, rule, enforced, forwarded, upstream_status: status, outcome }) {
          span.setAttributes({
            'toolgate.decision': decision, 'toolgate.code': code, 'toolgate.rule': rule,
            'toolgate.enforced': enforced, 'toolgate.forwarded': forwarded,
          });
          if (status !== undefined) span.setAttribute('toolgate.upstream_status', String(status));
          if (outcome !== undefined) span.setAttribute('toolgate.outcome', outcome);
          if (forwarded && outcome !== 'result' && outcome !== 'tool_error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
          span.end();
        },
      };
    },
  };
}
