// Share links: the playground state as JSON, deflate-raw compressed and
// base64url encoded into the URL fragment (#s=...). Nothing leaves the browser.

function toBase64Url(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('the link holds characters that are not base64url');
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  let binary;
  try {
    binary = atob(base64);
  } catch {
    throw new Error('the link is not valid base64url');
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function pipe(bytes, transform) {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** State object -> fragment value (without "#s="). */
export async function encodeState(state) {
  const bytes = new TextEncoder().encode(JSON.stringify(state));
  return toBase64Url(await pipe(bytes, new CompressionStream('deflate-raw')));
}

/** Fragment value -> state object; throws an Error with a readable reason. */
export async function decodeState(value) {
  if (!value) throw new Error('the link holds no state');
  const compressed = fromBase64Url(value);
  let bytes;
  try {
    bytes = await pipe(compressed, new DecompressionStream('deflate-raw'));
  } catch {
    throw new Error('the data could not be decompressed');
  }
  let state;
  try {
    state = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new Error('the data is not JSON');
  }
  if (!state || typeof state !== 'object' || Array.isArray(state)) throw new Error('the data is not a playground state');
  if (typeof state.policy !== 'string') throw new Error('the data has no policy text');
  if (state.tests !== undefined && !Array.isArray(state.tests)) throw new Error('the tests are not a list');
  if (state.composer !== undefined && (typeof state.composer !== 'object' || state.composer === null)) {
    throw new Error('the composer fields are not an object');
  }
  return state;
}
