// Preloaded (`--import`) into a process whose allocations a bench wants to see: V8's sampling heap
// profiler, keeping the samples of objects a major collection freed, so that the profile shows what
// outlived the young generation and died in the old one (what makes full collections), not only what
// is alive at the end. The profile is written to STITCH_HEAP_PROFILE when the process exits; open it
// in Chrome DevTools (Memory) or summarise it with heap-profile.ts.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { HEAP_PROFILE_ENV } from './heap-profile.js';

const file = process.env[HEAP_PROFILE_ENV];
if (file) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: true,
  });
  // A session on the process's own thread answers synchronously, so this works in an exit handler.
  process.once('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
