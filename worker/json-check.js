// What JSON.parse lets through but a policy proxy must not: duplicate object
// keys and runaway nesting.
//
// JSON.parse keeps the last of two equal keys; another parser upstream may keep
// the first, and then the proxy would decide on one tool name or argument and
// the server run another. The core treats a call with duplicate keys as
// invalid (spec: bad input is denied), so the proxy rejects such messages
// before deciding. Keys are compared after unescaping ("a" equals "\u0061").
//
// The text must already be known to be valid JSON (JSON.parse succeeded): this
// is a single linear pass that only tracks strings and brackets.

/**
 * The first problem in `text`, or null.
 * @returns {null | { problem: 'duplicate_key' | 'too_deep', pointer: string, key?: string }}
 */
export function findJsonProblem(text, { maxDepth = 256 } = {}) {
  // One frame per open container: for objects, the keys seen so far and the
  // key being read; for arrays, the index of the current element.
  const stack = [];
  let expectKey = false; // the next string in this object is a key
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // '"'
      // The closing quote: the next '"' not escaped, i.e. after an even run
      // of backslashes. indexOf skips string contents at native speed (a
      // megabyte argument is most of a large body).
      let j = i + 1;
      for (;;) {
        const quote = text.indexOf('"', j);
        if (quote < 0) {
          j = n;
          break;
        }
        let before = quote - 1;
        while (before > i && text.charCodeAt(before) === 0x5c) before--;
        if ((quote - 1 - before) % 2 === 0) {
          j = quote;
          break;
        }
        j = quote + 1;
      }
      const frame = stack[stack.length - 1];
      if (expectKey && frame?.keys) {
        const raw = text.slice(i + 1, j);
        const key = raw.includes('\\') ? JSON.parse(text.slice(i, j + 1)) : raw;
        // An object's first keys in an array (no Set for the few keys most
        // objects have); past SMALL_OBJECT_KEYS, a Set, so that a huge
        // object stays linear.
        let keys = frame.keys;
        let duplicate;
        if (Array.isArray(keys)) {
          duplicate = keys.includes(key);
          if (keys.length < SMALL_OBJECT_KEYS) keys.push(key);
          else frame.keys = keys = new Set(keys).add(key);
        } else {
          duplicate = keys.has(key);
          keys.add(key);
        }
        frame.key = key;
        if (duplicate) return { problem: 'duplicate_key', pointer: pointerOf(stack), key };
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) { // '{' '['
      if (stack.length >= maxDepth) return { problem: 'too_deep', pointer: pointerOf(stack) };
      stack.push(c === 0x7b ? { keys: [], key: '' } : { index: 0 });
      expectKey = c === 0x7b;
    } else if (c === 0x7d || c === 0x5d) { // '}' ']'
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) { // ','
      const frame = stack[stack.length - 1];
      if (frame?.keys) expectKey = true;
      else if (frame) frame.index++;
    }
  }
  return null;
}

// How many keys an object's frame keeps in an array before a Set.
const SMALL_OBJECT_KEYS = 16;

const escapeToken = (token) => String(token).replaceAll('~', '~0').replaceAll('/', '~1');

// Where the value being read stands: each open container's current key or index.
const pointerOf = (stack) => stack.map((frame) => `/${escapeToken(frame.keys ? frame.key : frame.index)}`).join('');
