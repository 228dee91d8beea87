// The media type of a request body, read strictly (RFC 9110 section 8.3.1):
// type "/" subtype *( OWS ";" OWS parameter ), parameter = token "=" ( token /
// quoted-string ). toolgate decodes a request as UTF-8 and forwards what it
// decided with its own Content-Type, so a body whose declared charset is not
// UTF-8 is refused rather than decided under one reading and, by a server
// honouring the charset (Express's JSON parser does, UTF-7 included), run
// under another.

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * @param {string | null} header
 * @returns {{ type: string, parameters: Map<string, string> } | null} null when it does not parse
 *   (also for a parameter named twice, which readers would resolve differently)
 */
export function parseMediaType(header) {
  if (typeof header !== 'string') return null;
  let rest = header.trim();
  const slash = /^([^\s;/]+)\/([^\s;]+)\s*/.exec(rest);
  if (!slash || !TOKEN.test(slash[1]) || !TOKEN.test(slash[2])) return null;
  const type = `${slash[1]}/${slash[2]}`.toLowerCase();
  rest = rest.slice(slash[0].length);
  const parameters = new Map();
  while (rest.length > 0) {
    const parameter = /^;\s*(?:([^\s=;]+)=("(?:[^"\\]|\\[\t\x20-\x7e\x80-\xff])*"|[^\s";]*)\s*)?/.exec(rest);
    if (!parameter) return null;
    rest = rest.slice(parameter[0].length);
    if (parameter[1] === undefined) continue; // an empty parameter (";;"), which RFC 9110 allows
    const name = parameter[1].toLowerCase();
    let value = parameter[2];
    if (!TOKEN.test(name)) return null;
    if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (!TOKEN.test(value)) return null;
    if (parameters.has(name)) return null;
    parameters.set(name, value);
  }
  return { type, parameters };
}

/**
 * Why a request body's Content-Type is refused, or null when it is JSON that
 * toolgate reads as the server will: application/json, charset absent or UTF-8.
 */
export function jsonContentTypeProblem(header) {
  // Clients send the same one or two values on every request: the verdict is
  // kept by header text (at most MEMO_SIZE values of at most MEMO_LENGTH
  // characters, then the memo starts over).
  if (typeof header !== 'string' || header.length > MEMO_LENGTH) return contentTypeProblem(header);
  let problem = verdicts.get(header);
  if (problem === undefined) {
    problem = contentTypeProblem(header);
    if (verdicts.size >= MEMO_SIZE) verdicts.clear();
    verdicts.set(header, problem);
  }
  return problem;
}

const MEMO_SIZE = 64;
const MEMO_LENGTH = 256;
const verdicts = new Map();

function contentTypeProblem(header) {
  const media = parseMediaType(header);
  if (!media || media.type !== 'application/json') {
    return `Content-Type must be application/json, not ${JSON.stringify(header ?? '')}.`;
  }
  const charset = media.parameters.get('charset');
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return `Content-Type's charset must be UTF-8 (or absent), not ${JSON.stringify(charset)}: toolgate reads bodies as UTF-8 only.`;
  }
  return null;
}
