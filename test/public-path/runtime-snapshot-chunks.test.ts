// packages/runtime/test/snapshot-chunks.test.ts again, with nats.js's public API only (see test/fixtures/public-path.ts).
import { publicPathOnly } from '../fixtures/public-path.js';

publicPathOnly(new URL('../../packages/runtime/test/snapshot-chunks.test.ts', import.meta.url));
