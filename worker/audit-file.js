// FileAuditSink: audit events as JSON lines appended to a file (Node only).
// The sink interface and the line format: ./audit.js.
//
// The file is opened with flag 'a' (O_APPEND): every write lands at the end,
// even when another process (a second proxy, logrotate's copytruncate) writes
// or truncates the same file. Writes go one at a time, in the order of the
// write() calls, so lines never interleave or reorder. Lines that arrive while
// a write is under way go out together in the next one (one system call for
// many events under load, instead of one each); each write() still settles
// when its own line is on disk, or rejects when that write failed.
import { open } from 'node:fs/promises';

import { eventLine } from './audit.js';

export class FileAuditSink {
  #path;
  #handle = null; // FileHandle, opened at the first write
  #queue = Promise.resolve(); // the last write, reopen or close
  #closed = false;
  #waiting = []; // lines not yet handed to a write: { line, resolve, reject }

  constructor({ path } = {}) {
    if (typeof path !== 'string' || path === '') throw new TypeError('FileAuditSink needs `path`, a file name');
    this.#path = path;
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
    return new Promise((resolve, reject) => {
      this.#waiting.push({ line, resolve, reject });
      // The first waiting line schedules the write that takes them all.
      if (this.#waiting.length === 1) this.#enqueue(() => this.#writeWaiting());
    });
  }

  async #writeWaiting() {
    const batch = this.#waiting;
    this.#waiting = [];
    try {
      const handle = await this.#opened();
      // FileHandle.appendFile writes the whole text (looping over short writes).
      await handle.appendFile(batch.length === 1 ? batch[0].line : batch.map((entry) => entry.line).join(''), 'utf8');
    } catch (error) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    for (const entry of batch) entry.resolve();
  }

  /**
   * Closes the file and opens `path` again, after the writes already under way:
   * for log rotation (rename the file, then reopen, e.g. on SIGHUP). Rejects
   * when the new file cannot be opened; writes then keep trying to open it.
   */
  reopen() {
    return this.#enqueue(async () => {
      await this.#release();
      await this.#opened();
    });
  }

  /** Waits for the writes under way, then closes the file. */
  close() {
    this.#closed = true;
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
