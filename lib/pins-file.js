// Reading a pins file on Node (toolgate serve and toolgate stdio): the text,
// checked by worker/pins.js (every hash against its definition), hashed with
// node:crypto. A file that cannot be read or checked is a clear error and no
// pins are half-used: the caller keeps the pins it had, or does not start.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { loadPins, PinsError } from '../worker/pins.js';

export const nodeSha256Hex = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Map(server -> ServerPins) from the file at `path` (absolute). Throws PinsError with the path and the reason. */
export async function readPinsFile(path, { trustOnFirstUse = false } = {}) {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PinsError(error.code === 'ENOENT' ? `cannot read pins file ${path}: no such file` : `cannot read pins file ${path}: ${error.message}`);
  }
  return loadPins(text, { source: path, sha256Hex: nodeSha256Hex, trustOnFirstUse });
}
