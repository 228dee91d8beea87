// The proxy's numbers on Cloudflare Workers, where no process lives long
// enough to be scraped: each decision and each upstream answer is written as
// one data point to a Workers Analytics Engine dataset (binding METRICS),
// queried with its SQL API. The same observer hooks as ./metrics.js on Node.
//
//   decision:  index server; blobs ["decision", server, tool, decision, code, enforced]; doubles [ms]
//   upstream:  index server; blobs ["upstream", server, status]; doubles [ms]
//
// Writing never fails a call: Analytics Engine accepts points without waiting,
// and any error here is dropped.

const MAX_BLOB = 128;
const cut = (value) => (value.length > MAX_BLOB ? value.slice(0, MAX_BLOB) : value);

/** @param {{writeDataPoint(point: object): void}} dataset an Analytics Engine binding */
export function analyticsEngineObserver(dataset) {
  const write = (point) => {
    try {
      dataset.writeDataPoint(point);
    } catch {
      // a metric lost, never a call
    }
  };
  return {
    decided({ server, tool, decision, code, enforced, ms }) {
      write({ indexes: [cut(server)], blobs: ['decision', cut(server), cut(tool ?? ''), decision, code, enforced ? 'true' : 'false'], doubles: [ms] });
    },
    upstream({ server, status, ms }) {
      write({ indexes: [cut(server)], blobs: ['upstream', cut(server), String(status)], doubles: [ms] });
    },
  };
}
