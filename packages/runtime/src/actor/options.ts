import type { AnyActorDefinition } from './definition.js';

/** An actor definition's limits and policies with every default filled in, resolved once per activation. */
export interface ResolvedActorOptions {
  concurrency: number;
  mailbox: { capacity: number; perCaller: number };
  restart: { maxRestarts: number; withinMs: number; backoffMs: number; maxBackoffMs: number };
  durable: { ackWaitMs: number; dedupKeys: number };
}

export function resolveActorOptions(def: AnyActorDefinition): ResolvedActorOptions {
  const capacity = def.mailbox?.capacity ?? 1024;
  const r = def.restart ?? {};
  return {
    concurrency: def.concurrency ?? 1,
    mailbox: { capacity, perCaller: def.mailbox?.perCaller ?? Math.max(1, Math.floor(capacity / 4)) },
    restart: {
      maxRestarts: r.maxRestarts ?? 5,
      withinMs: r.withinMs ?? 60_000,
      backoffMs: r.backoffMs ?? 50,
      maxBackoffMs: r.maxBackoffMs ?? 5000,
    },
    durable: { ackWaitMs: def.durable?.ackWaitMs ?? 5000, dedupKeys: def.durable?.dedupKeys ?? 1000 },
  };
}
