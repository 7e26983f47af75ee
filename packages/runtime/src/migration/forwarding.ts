import { FORWARD_ROOM, type ForwardedMessage } from './protocol.js';
import { ask, type Move } from './source.js';

/**
 * From the pause until the source has stopped receiving, sends what reaches the paused source to the
 * target as it comes (`early`): before the commit the target queues it once its compare-and-set
 * succeeds, instead of a round trip later; after it, at once. Until the commit what went stays queued
 * here too (a failed commit resumes the source with it); from `committed` on, what the target has
 * confirmed is dropped here, so that the source's mailbox limits count only what is on its way while
 * it keeps receiving (a grace period: the target serves meanwhile, and callers send faster than while
 * it was paused). `stop` ends it and says how many messages the target has in all, how many of them
 * are still queued here, and those of a request that got no answer (the target may or may not have
 * them).
 */
export function sendEarly(move: Move): {
  committed(): void;
  stop(): Promise<{ sent: number; stillQueued: number; unsure: ForwardedMessage[] }>;
} {
  const { a, migration } = move;
  const bytes = move.partBytes;
  let sent = 0;
  let dropped = 0;
  let committed = false;
  let unsure: ForwardedMessage[] = [];
  let stopped = false;
  let sending = false;
  let done = Promise.resolve();
  const drop = () => {
    a.dropQueued(sent - dropped);
    dropped = sent;
  };
  const pump = () => {
    if (sending || stopped || unsure.length > 0) return;
    sending = true;
    done = (async () => {
      while (!stopped) {
        const items = a.queued(sent - dropped, bytes);
        if (items.length === 0) break;
        try {
          await ask(move, { op: 'early', migration, items });
          sent += items.length;
          if (committed) drop();
        } catch {
          unsure = items;
          break;
        }
      }
      sending = false;
    })();
  };
  a.onQueued(pump);
  pump();
  return {
    committed() {
      committed = true;
      drop();
    },
    async stop() {
      stopped = true;
      a.onQueued(undefined);
      await done;
      return { sent, stillQueued: sent - dropped, unsure };
    },
  };
}

/** Messages in order, cut into batches of at most `bytes` each (takeQueued keeps larger ones back). */
function forwardBatches(items: ForwardedMessage[], bytes: number): ForwardedMessage[][] {
  const batches: ForwardedMessage[][] = [];
  let batch: ForwardedMessage[] = [];
  let size = 0;
  for (const item of items) {
    const n = item.b.length + FORWARD_ROOM;
    if (batch.length > 0 && size + n > bytes) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
    batch.push(item);
    size += n;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * After a commit that handed the durable consumer's pulls over: the source stops reading them once the
 * target has read them for the grace period (it had for `heldMs` when it answered the commit) and
 * forwards the durable messages it holds, the last batch saying so (the target then runs its durable
 * messages). Resolves with the time it took to stop; what the target did not take goes back to the
 * stream.
 */
export async function forwardDurable(move: Move, heldMs: number): Promise<number> {
  const t0 = performance.now();
  const graceMs = Math.max(0, move.ctx.graceMs - heldMs);
  const items = await move.a.stopPulling(graceMs, move.partBytes - FORWARD_ROOM);
  const waited = performance.now() - t0;
  await sendForwarded(
    move,
    items,
    'durable',
    'durable messages that reached the source during a migration went back to the stream',
  );
  return waited;
}

/**
 * Sends `items` to the target in batches that fit a request, the last as `last` (`done`, or the
 * `forward` that says the durable messages are all there). What the target did not take is bounced
 * (see Migratable.bounce) and logged as `failed`.
 */
export async function sendForwarded(
  move: Move,
  items: ForwardedMessage[],
  last: 'done' | 'durable',
  failed: string,
): Promise<void> {
  const { ctx, a, to, migration } = move;
  const batches = forwardBatches(items, move.partBytes);
  if (batches.length === 0) batches.push([]);
  let sent = 0;
  try {
    for (; sent < batches.length - 1; sent++)
      await ask(move, { op: 'forward', migration, items: batches[sent]! });
    const final = batches[sent]!;
    await ask(
      move,
      last === 'done'
        ? { op: 'done', migration, items: final }
        : { op: 'forward', migration, items: final, durable: true },
    );
  } catch (err) {
    const left = batches.slice(sent).flat();
    a.bounce(left);
    ctx.log(failed, { actor: a.key, to, messages: left.length, error: String(err) });
  }
}
