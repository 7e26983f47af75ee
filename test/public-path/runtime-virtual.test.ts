// test/runtime-virtual.test.ts again, with nats.js's public API only (see test/fixtures/public-path.ts).
import { publicPathOnly } from '../fixtures/public-path.js';

publicPathOnly(new URL('../runtime-virtual.test.ts', import.meta.url));
