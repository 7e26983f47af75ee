// Counts the cases whose replies show they reached a handler: any reply that is not a decoding or
// admission error (bad message, overloaded, bad actor type/id).
import type { Msg } from '@nats-io/transport-node';
import { decodeReplies } from '@stitch/runtime/internal';

const NOT_REACHED = new Set(['ACTOR_BAD_MESSAGE', 'ACTOR_OVERLOADED', 'RUNTIME_OPTIONS']);

export class ReplyCounter {
  readonly reached = new Set<number>();
  /** Replies by error code (`ok` for a success), since the last `reset`. */
  readonly codes = new Map<string, number>();
  /** Replies received since the last `reset`. */
  received = 0;
  last = Date.now();

  constructor(readonly inbox: string) {}

  #caseOf(subject: string): number | undefined {
    if (!subject.startsWith(`${this.inbox}.`)) return undefined;
    const n = Number(subject.slice(this.inbox.length + 1).split('.')[0]);
    return Number.isInteger(n) ? n : undefined;
  }

  reset(): void {
    this.reached.clear();
    this.codes.clear();
    this.received = 0;
  }

  #count(code: string | undefined): void {
    const k = code || 'ok';
    this.codes.set(k, (this.codes.get(k) ?? 0) + 1);
    this.received++;
  }

  take(m: Msg): void {
    this.last = Date.now();
    if (m.headers?.get('Stitch-Batch')) {
      try {
        for (const r of decodeReplies(m.data)) {
          const c = this.#caseOf(r.reply);
          this.#count(r.ok ? undefined : r.error.code);
          if (c !== undefined && (r.ok || !NOT_REACHED.has(r.error.code))) this.reached.add(c);
        }
      } catch {
        // a reply batch this counter cannot read counts nothing
      }
      return;
    }
    const c = this.#caseOf(m.subject);
    const code = m.headers?.get('Stitch-Error-Code');
    this.#count(code);
    if (c !== undefined && (!code || !NOT_REACHED.has(code))) this.reached.add(c);
  }
}
