// FileAuditSink: audit events as JSON lines appended to a file (Node only).
// The sink interface and the line format: ./audit.js.
//
// The file is opened with flag 'a' (O_APPEND): every write lands at the end,
// even when another process (a second proxy, logrotate's copytruncate) writes
// or truncates the same file. Writes go one at a time, in the order of the
// write() calls, so lines never interleave or reorder.
//
// Lines are written in batches: a line waits up to `flushMs` (default 5 ms)
// for others, or until `maxBatchBytes` (1 MiB) are waiting, and lines that
// arrive while a write is under way go out together in the next one. Under
// load that is one append for dozens of events instead of one each: a file
// write is a trip through libuv's thread pool (a thread woken, a completion
// posted back), which cost `toolgate serve` more CPU per call than building
// the event (bench/README.md, "The proxy"). Each write() still settles when
// its own line is on disk, or rejects when that write failed; close() and
// reopen() write what is waiting first.
import { open } from 'node:fs/promises';

import { eventLine, newLineBatch } from './audit.js';

export class FileAuditSink {
  #path;
  #flushMs;
  #maxBatchBytes;
  #handle = null; // FileHandle, opened at the first write
  #queue = Promise.resolve(); // the last write, reopen or close
  #closed = false;
  // The lines not yet handed to a write, as one text, and the promise they
  // share: { text, promise, resolve, reject }, or null. One promise a batch,
  // not one a line: every line of a batch is written by the same append, so
  // each write() of it settles when that append does, as it would with a
  // promise of its own (and a promise, its executor and an entry per audited
  // call were most of what this sink allocated).
  #waiting = null;
  #timer = null; // the flush scheduled for #waiting, or null

  /**
   * @param {{ path: string, flushMs?: number, maxBatchBytes?: number }} options
   *   flushMs: how long a line may wait for others before it is written (0: write at once,
   *   batching only the lines that arrive while a write is under way)
   */
  constructor({ path, flushMs = 5, maxBatchBytes = 1024 * 1024 } = {}) {
    if (typeof path !== 'string' || path === '') throw new TypeError('FileAuditSink needs `path`, a file name');
    if (!(Number.isFinite(flushMs) && flushMs >= 0)) throw new TypeError('FileAuditSink `flushMs` must be a number of milliseconds >= 0');
    if (!(Number.isFinite(maxBatchBytes) && maxBatchBytes > 0)) throw new TypeError('FileAuditSink `maxBatchBytes` must be a positive number');
    this.#path = path;
    this.#flushMs = flushMs;
    this.#maxBatchBytes = maxBatchBytes;
  }

  get path() {
    return this.#path;
  }

  /** Appends the event as one line; rejects when it was not written (the next write tries again). */
  write(event) {
    let line;
    try {
      if (this.#closed) throw new Error('FileAuditSink is closed');
      line = eventLine(event);
    } catch (error) {
      return Promise.reject(error);
    }
    let batch = this.#waiting;
    if (batch === null) {
      batch = this.#waiting = newLineBatch();
    }
    // (The text's length in UTF-16 units: a bound, not an exact byte count.)
    batch.text += line;
    if (batch.text.length >= this.#maxBatchBytes || this.#flushMs === 0) this.#flush();
    else this.#timer ??= setTimeout(this.#flushLater, this.#flushMs);
    return batch.promise;
  }

  #flushLater = () => this.#flush();

  // Hands the waiting lines to one write, queued after the writes before it.
  #flush() {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const batch = this.#waiting;
    if (batch === null) return;
    this.#waiting = null;
    this.#enqueue(() => this.#writeBatch(batch));
  }

  async #writeBatch(batch) {
    try {
      const handle = await this.#opened();
      // FileHandle.appendFile writes the whole text (looping over short writes).
      await handle.appendFile(batch.text, 'utf8');
    } catch (error) {
      batch.reject(error);
      return;
    }
    batch.resolve();
  }

  /**
   * Closes the file and opens `path` again, after the writes already asked
   * for: for log rotation (rename the file, then reopen, e.g. on SIGHUP).
   * Rejects when the new file cannot be opened; writes then keep trying to open it.
   */
  reopen() {
    this.#flush();
    return this.#enqueue(async () => {
      await this.#release();
      await this.#opened();
    });
  }

  /** Writes what is waiting, then closes the file. */
  close() {
    this.#closed = true;
    this.#flush();
    return this.#enqueue(() => this.#release());
  }

  // Runs `task` after everything queued before it; a failure rejects only its
  // own caller, not the tasks after it.
  #enqueue(task) {
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #opened() {
    // Not kept on failure: a path that was unwritable may be fixed by the next write.
    this.#handle ??= await open(this.#path, 'a', 0o640);
    return this.#handle;
  }

  async #release() {
    const handle = this.#handle;
    this.#handle = null;
    await handle?.close();
  }
}
