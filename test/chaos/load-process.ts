// The chaos client: sends `requests` durable asks at a steady `rate` (open loop: a stalled cluster does
// not slow the sending) to `actors` accounts, retrying each failed ask with the same idempotency key
// as a user would, until it succeeds or `giveUpMs` have passed. Then it reads every account's applied
// counters and writes `{ records, applied }` (measure.ts) as JSON to `out`. Prints `started` once
// connected and `done` at the end.
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { connectCluster, StitchError } from '@stitch/runtime';
import { Account } from './account.js';
import type { RequestRecord } from './measure.js';

export interface LoadConfig {
  urls: string[];
  cluster: string;
  requests: number;
  rate: number;
  actors: number;
  /** Timeout of one ask. */
  timeoutMs: number;
  giveUpMs: number;
  out: string;
  nkeySeedFile?: string;
}

const c = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
const cluster = await connectCluster({
  nats: c.urls,
  name: c.cluster,
  waitForServerMs: 10_000,
  askTimeoutMs: c.timeoutMs,
  log: () => undefined,
  ...(c.nkeySeedFile ? { nkeySeedFile: c.nkeySeedFile } : {}),
});
const accounts = Array.from({ length: c.actors }, (_, i) => cluster.get(Account, `acct-${i}`));
const errors: Record<string, number> = {};
const codeOf = (err: unknown) => (err instanceof StitchError ? err.code : String((err as Error)?.name));

async function request(i: number): Promise<RequestRecord> {
  const r: RequestRecord = { key: `r${i}`, sent: Date.now(), done: 0, attempts: 0, ok: false };
  const account = accounts[i % c.actors]!;
  for (;;) {
    r.attempts++;
    try {
      r.reply = await account.ask(
        { type: 'apply', amount: 1 },
        { mode: 'durable', idempotencyKey: r.key, timeoutMs: c.timeoutMs },
      );
      r.ok = true;
      break;
    } catch (err) {
      const code = codeOf(err);
      errors[code] = (errors[code] ?? 0) + 1;
      // Applied before, its answer not kept: a success the caller learns of late.
      if (code === 'ACTOR_DUPLICATE') {
        r.ok = true;
        break;
      }
      if (Date.now() - r.sent > c.giveUpMs) break;
      await delay(Math.min(1000, 100 * r.attempts));
    }
  }
  r.done = Date.now();
  return r;
}

/** An account's counters, asked until it answers (the cluster may still be settling). */
async function appliedOf(i: number): Promise<Record<string, number>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await accounts[i]!.ask(
        { type: 'applied' },
        { mode: 'durable', timeoutMs: c.timeoutMs },
      )) as Record<string, number>;
    } catch (err) {
      if (attempt >= 30) throw err;
      await delay(500);
    }
  }
}

process.stdout.write('started\n');
const start = Date.now();
const pending: Promise<RequestRecord>[] = [];
for (let i = 0; i < c.requests; i++) {
  const at = start + (i * 1000) / c.rate;
  if (at > Date.now()) await delay(at - Date.now());
  pending.push(request(i));
}
const records = await Promise.all(pending);
const applied = await Promise.all(accounts.map((_, i) => appliedOf(i)));
writeFileSync(c.out, JSON.stringify({ records, applied, errors }));
await cluster.close();
process.stdout.write('done\n');
process.exit(0);
