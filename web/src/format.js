// How the playground writes values as text: times, durations, JSON cut to a
// width, grant ids, and a policy test's expectation. Pure functions, no DOM,
// shared by the views (and `meets` by the policy tests, as `toolgate eval`
// reads "expect").

/** RFC 3339 text of epoch ms, without ".000" when the milliseconds are zero. */
export function iso(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  try {
    return new Date(ms).toISOString().replace('.000Z', 'Z');
  } catch {
    return String(ms);
  }
}

/** The time of day of epoch ms (the date is left out when the text has one). */
export function shortTime(ms) {
  const text = iso(ms);
  return text.length > 11 ? text.slice(11) : text;
}

/** A duration in ms in the largest unit that keeps it readable ("90 s", "2.5 h"). */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${+s.toFixed(1)} s`;
  if (s < 7200) return `${+(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} d`;
}

/** A value as one line of JSON (strings as they are), cut to `max` characters. */
export function compactJson(value, max = 140) {
  let text;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The id of a call's grant (a string, or an object's `id`); "anonymous" when absent. */
export function grantId(grant) {
  if (grant === undefined) return 'anonymous';
  if (typeof grant === 'string') return grant;
  if (grant && typeof grant === 'object') return String(grant.id ?? '');
  return String(grant);
}

/** Does a decision meet an "expect" (as `toolgate eval` reads it)? */
export function meets(expect, decision) {
  if (typeof expect === 'string') return decision.decision === expect || decision.code === expect;
  if (expect && typeof expect === 'object') {
    return Object.entries(expect).every(([key, value]) => JSON.stringify(decision[key]) === JSON.stringify(value));
  }
  return false;
}

/** An "expect" as the tests table shows it. */
export function expectText(expect) {
  if (expect === undefined) return '—';
  if (typeof expect === 'string') return expect;
  if (expect && typeof expect === 'object') {
    return Object.entries(expect).map(([k, v]) => (k === 'decision' || k === 'code' ? String(v) : `${k}=${compactJson(v, 60)}`)).join(' · ');
  }
  return compactJson(expect);
}
