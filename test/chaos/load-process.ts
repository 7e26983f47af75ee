// The chaos client: sends `requests` durable asks at a steady `rate` (open loop: a stalled cluster does
// not slow the sending) to `actors` accounts, retrying each failed ask with the same idempotency key
// as a user would, until it succeeds or `giveUpMs` have passed. Then it reads every account's applied
// counters and writes `{ records, applied, errors, takeOvers }` (measure.ts; takeOvers: activations
// it started because an actor's node was gone) as JSON to `out`. Prints `started` once
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
// A rejection nobody awaits (a runtime bug) would end this process and lose the run's records; it is
// counted instead, and shows in the scenario's `errors`.
process.on('unhandledRejection', (err) => {
  const code = `unhandled:${codeOf(err)}`;
  errors[code] = (errors[code] ?? 0) + 1;
});

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

/** An account's counters, asked until it answers (the cluster may still be settling) or `giveUpMs` pass. */
async function appliedOf(i: number): Promise<Record<string, number>> {
  const end = Date.now() + c.giveUpMs;
  for (;;) {
    try {
      return (await accounts[i]!.ask(
        { type: 'applied' },
        { mode: 'durable', timeoutMs: c.timeoutMs },
      )) as Record<string, number>;
    } catch (err) {
      if (Date.now() > end)
        throw new Error(`acct-${i} did not give its counters in ${c.giveUpMs} ms: ${codeOf(err)}`);
      await delay(500);
    }
  }
}

let phase = 'sending';
let settled = 0;

async function main(): Promise<void> {
  process.stdout.write('started\n');
  const start = Date.now();
  const pending: Promise<RequestRecord>[] = [];
  for (let i = 0; i < c.requests; i++) {
    const at = start + (i * 1000) / c.rate;
    if (at > Date.now()) await delay(at - Date.now());
    pending.push(request(i).finally(() => settled++));
  }
  phase = 'waiting for answers';
  const records = await Promise.all(pending);
  phase = 'reading the counters';
  const applied = await Promise.all(accounts.map((_, i) => appliedOf(i)));
  const takeOvers = cluster.metrics().takeOversOfGoneNodes;
  writeFileSync(c.out, JSON.stringify({ records, applied, errors, takeOvers }));
  phase = 'closing';
  await cluster.close();
}

// Every request ends by `giveUpMs` after it was sent plus one ask; one still open long after (a runtime
// promise that never settles) is reported with the phase it blocks, rather than waited on.
const deadline = Date.now() + (c.requests / c.rate) * 1000 + 2 * c.giveUpMs + 4 * c.timeoutMs;
setInterval(() => {
  if (Date.now() < deadline) return;
  process.stderr.write(`load client: stuck ${phase}; ${c.requests - settled} requests never settled\n`, () =>
    process.exit(1),
  );
}, 1000);

// An explicit exit either way: the rejection handler above would otherwise swallow a failed main.
main().then(
  // Exit only once `done` reached the pipe: stdout to a pipe is asynchronous.
  () => process.stdout.write('done\n', () => process.exit(0)),
  (err: Error) => process.stderr.write(`load client: ${err.message}\n`, () => process.exit(1)),
);
