// `node dist/prebuild-stt-worker.js`, run by the package's build: compiles the speech-to-text worker
// ahead of time where it can (else it is built on first use). An entry point of its own: in the
// bundle, build-worker.ts's code may sit in a shared chunk, where no "am I the main module" test holds.
import { ensureWorker } from './build-worker.js';

ensureWorker().then(
  (path) => process.stdout.write(`stt worker: ${path}\n`),
  (e: Error) => process.stderr.write(`stt worker not built (it is built on first use): ${e.message}\n`),
);
