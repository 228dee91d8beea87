// Calls onChange (debounced) when any of a set of files changes. Editors save
// by writing a new file and renaming it over the old one, which a watch on the
// file itself would miss: the directories are watched, filtered by name.
import { watch } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function watchFiles(files, onChange, { debounceMs = 100 } = {}) {
  let watchers = [];
  let timer;
  const set = (list) => {
    for (const watcher of watchers) watcher.close();
    const names = new Set(list.map((f) => resolve(f)));
    watchers = [...new Set([...names].map((f) => dirname(f)))].map((dir) => watch(dir, (event, name) => {
      if (name && !names.has(resolve(dir, name.toString()))) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    }));
  };
  set(files);
  return {
    /** Watches these files instead. */
    set,
    close() {
      clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
      watchers = [];
    },
  };
}
