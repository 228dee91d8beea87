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
//
// It runs on every request body and every JSON answer, so the common path
// allocates nothing: the open containers and the keys of the open objects
// are offsets in typed arrays kept between calls (the scan is synchronous, so
// one set serves every call in a thread), and a key without a backslash is
// compared where it stands in the text, not sliced out. A key with escapes is
// decoded (JSON.parse of its literal); an object past SMALL_OBJECT_KEYS keys
// gets a Set of its keys as strings, so that a huge object stays linear.
// Only a problem found builds strings (its pointer and key).

// How many keys an object's keys are compared one by one before a Set.
const SMALL_OBJECT_KEYS = 16;

// Per open container (index = depth - 1): whether it is an object, an
// array's current index, and where its keys start in the key arrays.
let isObject = new Uint8Array(64);
let arrayIndex = new Int32Array(64);
let keysFrom = new Int32Array(64);
// Per key of an open object: where its text starts and ends (the characters
// between the quotes), and whether it has escapes (decoded[k] then holds it).
const FIRST_KEYS = 256;
const KEPT_KEYS = 16_384; // kept between calls at most (144 kB)
let keyStart = new Int32Array(FIRST_KEYS);
let keyEnd = new Int32Array(FIRST_KEYS);
let keyEscaped = new Uint8Array(FIRST_KEYS);
const decoded = [];
// The Set of an object past SMALL_OBJECT_KEYS keys, by depth - 1 (undefined otherwise).
const keySets = [];

/**
 * The first problem in `text`, or null.
 * @param {string} text JSON text JSON.parse accepted
 * @param {{ maxDepth?: number }} [options] containers nested more than maxDepth (256) deep are a problem
 * @returns {null | { problem: 'duplicate_key' | 'too_deep', pointer: string, key?: string }}
 */
export function findJsonProblem(text, options) {
  const maxDepth = options?.maxDepth ?? 256;
  let depth = 0; // open containers
  let keys = 0; // keys of the open objects
  let expectKey = false; // the next string in this object is a key
  const n = text.length;
  try {
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) { // '"'
        // The closing quote: the next '"' not escaped, i.e. after an even run
        // of backslashes. indexOf skips string contents at native speed (a
        // megabyte argument is most of a large body; and for the short
        // strings of a call, a loop over their characters was slower).
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
        if (expectKey && depth > 0 && isObject[depth - 1] === 1) {
          if (keys === keyStart.length) growKeys();
          keyStart[keys] = i + 1;
          keyEnd[keys] = j;
          let escaped = 0;
          for (let k = i + 1; k < j; k++) {
            if (text.charCodeAt(k) === 0x5c) {
              escaped = 1;
              break;
            }
          }
          keyEscaped[keys] = escaped;
          if (escaped === 1) decoded[keys] = JSON.parse(text.slice(i, j + 1));
          const duplicate = isDuplicate(text, depth - 1, keys);
          keys++;
          if (duplicate) {
            return { problem: 'duplicate_key', pointer: pointerOf(text, depth, keys), key: keyText(text, keys - 1) };
          }
          expectKey = false;
        }
        i = j;
      } else if (c === 0x7b || c === 0x5b) { // '{' '['
        if (depth >= maxDepth) return { problem: 'too_deep', pointer: pointerOf(text, depth, keys) };
        if (depth === isObject.length) growDepth();
        isObject[depth] = c === 0x7b ? 1 : 0;
        arrayIndex[depth] = 0;
        keysFrom[depth] = keys;
        depth++;
        expectKey = c === 0x7b;
      } else if (c === 0x7d || c === 0x5d) { // '}' ']'
        if (depth > 0) {
          depth--;
          keys = keysFrom[depth];
          if (depth < keySets.length) keySets[depth] = undefined;
        }
        expectKey = false;
      } else if (c === 0x2c) { // ','
        if (depth > 0) {
          if (isObject[depth - 1] === 1) expectKey = true;
          else arrayIndex[depth - 1]++;
        }
      }
    }
    return null;
  } finally {
    // Nothing of this text is kept past the call (the decoded keys and the
    // Sets hold parts of it); the typed arrays keep only offsets, and go back
    // to their first size after a document that grew them far (a body of a
    // million keys in one object would otherwise keep megabytes).
    if (decoded.length > 0) decoded.length = 0;
    if (keySets.length > 0) keySets.length = 0;
    if (keyStart.length > KEPT_KEYS) {
      keyStart = new Int32Array(FIRST_KEYS);
      keyEnd = new Int32Array(FIRST_KEYS);
      keyEscaped = new Uint8Array(FIRST_KEYS);
    }
  }
}

// Whether key `k` (the newest) equals an earlier key of the object at `frame`.
function isDuplicate(text, frame, k) {
  const from = keysFrom[frame];
  const count = k - from;
  let set = keySets[frame];
  if (set === undefined && count >= SMALL_OBJECT_KEYS) {
    set = keySets[frame] = new Set();
    for (let e = from; e < k; e++) set.add(keyText(text, e));
  }
  if (set !== undefined) {
    const key = keyText(text, k);
    if (set.has(key)) return true;
    set.add(key);
    return false;
  }
  for (let e = from; e < k; e++) if (sameKey(text, e, k)) return true;
  return false;
}

// Whether keys a and b are the same string once unescaped.
function sameKey(text, a, b) {
  if (keyEscaped[a] === 0 && keyEscaped[b] === 0) {
    const start = keyStart[a];
    const other = keyStart[b];
    const length = keyEnd[a] - start;
    if (keyEnd[b] - other !== length) return false;
    for (let c = 0; c < length; c++) {
      if (text.charCodeAt(start + c) !== text.charCodeAt(other + c)) return false;
    }
    return true;
  }
  return keyText(text, a) === keyText(text, b);
}

// Key k as a string, unescaped.
const keyText = (text, k) => (keyEscaped[k] === 1 ? decoded[k] : text.slice(keyStart[k], keyEnd[k]));

const escapeToken = (token) => String(token).replaceAll('~', '~0').replaceAll('/', '~1');

// Where the value being read stands: each open container's current key (its
// newest; "" before its first) or index, as a JSON pointer.
function pointerOf(text, depth, keys) {
  let pointer = '';
  for (let d = 0; d < depth; d++) {
    if (isObject[d] === 1) {
      const end = d + 1 < depth ? keysFrom[d + 1] : keys;
      pointer += `/${escapeToken(end > keysFrom[d] ? keyText(text, end - 1) : '')}`;
    } else {
      pointer += `/${arrayIndex[d]}`;
    }
  }
  return pointer;
}

function growDepth() {
  const size = isObject.length * 2;
  isObject = grown(isObject, new Uint8Array(size));
  arrayIndex = grown(arrayIndex, new Int32Array(size));
  keysFrom = grown(keysFrom, new Int32Array(size));
}

function growKeys() {
  const size = keyStart.length * 2;
  keyStart = grown(keyStart, new Int32Array(size));
  keyEnd = grown(keyEnd, new Int32Array(size));
  keyEscaped = grown(keyEscaped, new Uint8Array(size));
}

function grown(from, to) {
  to.set(from);
  return to;
}
