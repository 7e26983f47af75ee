import { InvalidOptions } from '../errors.js';
import type { MailboxOptions } from './mailbox.js';
import type { PersistPolicy } from './persister.js';

export interface RestartPolicy {
  /** Restarts allowed within `withinMs`; one more stops the actor. @default 5 */
  maxRestarts?: number;
  /** @default 60000 */
  withinMs?: number;
  /** First backoff; doubles per restart in the window. @default 50 */
  backoffMs?: number;
  /** @default 5000 */
  maxBackoffMs?: number;
}

export interface DurableOptions {
  /** Unacknowledged messages are redelivered after this long. @default 5000 */
  ackWaitMs?: number;
  /** Idempotency keys remembered with the snapshot. @default 1000 */
  dedupKeys?: number;
  /**
   * How long one pull for messages waits at the server. A pull lost with its server (a nats-server
   * killed) is noticed after two missed idle heartbeats (half of this each), so this bounds how long
   * the actor stays deaf after a server loss; an idle actor sends one pull per period. @default 5000
   */
  pullExpiresMs?: number;
}

/** The limits and policies of an actor definition. */
export interface ActorPolicies {
  concurrency?: number;
  concurrencyPerNode?: number;
  mailbox?: MailboxOptions;
  restart?: RestartPolicy;
  durable?: DurableOptions;
  /**
   * Save the snapshot of a fast-mode actor while it runs, not only on a graceful stop, so that a
   * killed node loses at most this much (needs `snapshot`). Durable messages are saved as they commit.
   */
  persist?: PersistPolicy;
}

/** An actor definition's limits and policies with every default filled in, resolved once per activation. */
export interface ResolvedActorOptions {
  concurrency: number;
  /** Undefined: no bound beyond each activation's own. */
  concurrencyPerNode: number | undefined;
  mailbox: { capacity: number; perCaller: number };
  restart: { maxRestarts: number; withinMs: number; backoffMs: number; maxBackoffMs: number };
  durable: { ackWaitMs: number; dedupKeys: number; pullExpiresMs: number };
  persist: PersistPolicy | undefined;
}

/** Fills in every default and checks every value; `defineActor` calls it once to validate. */
export function resolveActorOptions(type: string, def: ActorPolicies): ResolvedActorOptions {
  const capacity = def.mailbox?.capacity ?? 1024;
  const r = def.restart ?? {};
  const resolved: ResolvedActorOptions = {
    concurrency: def.concurrency ?? 1,
    concurrencyPerNode: def.concurrencyPerNode,
    mailbox: { capacity, perCaller: def.mailbox?.perCaller ?? Math.max(1, Math.floor(capacity / 4)) },
    restart: {
      maxRestarts: r.maxRestarts ?? 5,
      withinMs: r.withinMs ?? 60_000,
      backoffMs: r.backoffMs ?? 50,
      maxBackoffMs: r.maxBackoffMs ?? 5000,
    },
    durable: {
      ackWaitMs: def.durable?.ackWaitMs ?? 5000,
      dedupKeys: def.durable?.dedupKeys ?? 1000,
      pullExpiresMs: def.durable?.pullExpiresMs ?? 5000,
    },
    persist: def.persist,
  };
  if (def.persist !== undefined) {
    const { everyMs, everyMessages } = def.persist ?? {};
    if (everyMs === undefined && everyMessages === undefined)
      throw new InvalidOptions(`actor "${type}": persist needs everyMs, everyMessages or both`);
    for (const [name, value] of [
      ['persist.everyMs', everyMs],
      ['persist.everyMessages', everyMessages],
    ] as const)
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1))
        throw new InvalidOptions(`actor "${type}": ${name} must be an integer ≥ 1`);
  }
  const integers: [string, number, number][] = [
    ['concurrency', resolved.concurrency, 1],
    ['concurrencyPerNode', resolved.concurrencyPerNode ?? 1, 1],
    ['mailbox.capacity', resolved.mailbox.capacity, 1],
    ['mailbox.perCaller', resolved.mailbox.perCaller, 1],
    ['restart.maxRestarts', resolved.restart.maxRestarts, 0],
    ['restart.withinMs', resolved.restart.withinMs, 0],
    ['restart.backoffMs', resolved.restart.backoffMs, 0],
    ['restart.maxBackoffMs', resolved.restart.maxBackoffMs, 0],
    ['durable.ackWaitMs', resolved.durable.ackWaitMs, 1],
    ['durable.dedupKeys', resolved.durable.dedupKeys, 1],
    // nats.js refuses a pull that expires in under a second.
    ['durable.pullExpiresMs', resolved.durable.pullExpiresMs, 1000],
  ];
  for (const [name, value, min] of integers) {
    if (!Number.isSafeInteger(value) || value < min)
      throw new InvalidOptions(`actor "${type}": ${name} must be an integer ≥ ${min}`);
  }
  return resolved;
}
