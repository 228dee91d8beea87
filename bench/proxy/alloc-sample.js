// Preloaded (node --import) by profile-diff.js --alloc: V8's sampling heap
// profiler over the whole life of the server, counting objects that young- and
// old-generation collections have already freed (which --heap-prof leaves out:
// it keeps only what is still alive at the end, and a proxy's per-call garbage
// is exactly what dies young). The profile is written, as JSON, to
// $TOOLGATE_ALLOC_PROFILE when the process exits. Main thread only.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { isMainThread } from 'node:worker_threads';

const path = process.env.TOOLGATE_ALLOC_PROFILE;
if (isMainThread && path) {
  const session = new Session();
  session.connect();
  // One sample per 1 KiB allocated on average (V8's default is 32 KiB: too
  // coarse for a call that allocates a few tens of kilobytes).
  session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.on('exit', () => {
    // An in-thread inspector session answers synchronously.
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (!error) writeFileSync(path, JSON.stringify(result.profile));
    });
  });
}
