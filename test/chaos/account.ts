// The stateful actor the chaos scenarios load: every durable `apply` counts its idempotency key in the
// actor's own state, committed with the message, so that after a fault the state says exactly which
// requests took effect and how often.
import { defineActor } from '@stitch/runtime';

interface AccountState {
  /** Idempotency key → times applied. */
  applied: Record<string, number>;
  balance: number;
}

export const Account = defineActor({
  type: 'chaos-account',
  init: (): AccountState => ({ applied: {}, balance: 0 }),
  handlers: {
    apply(s: AccountState, m: { amount: number }, ctx) {
      if (typeof m.amount !== 'number' || !Number.isFinite(m.amount))
        throw new RangeError('apply needs a finite amount');
      const key = ctx.idempotencyKey ?? 'none';
      s.applied[key] = (s.applied[key] ?? 0) + 1;
      s.balance += m.amount;
      return s.applied[key];
    },
    applied: (s: AccountState) => s.applied,
  },
  snapshot: (s) => s,
  restore: (snap) => snap as AccountState,
  // Every key a scenario sends to one account stays remembered, so a retry late in a run is still a repeat.
  durable: { ackWaitMs: 2000, dedupKeys: 20_000 },
});
