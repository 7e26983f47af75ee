// test/runtime-messaging.test.ts again, with nats.js's public API only (see test/fixtures/public-path.ts).
import { publicPathOnly } from '../fixtures/public-path.js';

publicPathOnly(new URL('../runtime-messaging.test.ts', import.meta.url));
