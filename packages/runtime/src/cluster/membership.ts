import type { KV } from '@nats-io/kv';

/** Published on `stitch.<cluster>.membership` as JSON. */
export interface MembershipEvent {
  kind: 'join' | 'leave' | 'dead';
  nodeId: string;
  /** KV revision of the node's last record: with `kind` and `nodeId` it identifies the event. */
  revision: number;
  /** Epoch ms when the event was observed. */
  at: number;
  /** `dead` only: how long after the last heartbeat the node was declared dead. */
  silentForMs?: number;
}

/**
 * Declares a node dead when its heartbeat stops. nats-server 2.9 removes an expired KV key without
 * telling watchers, so expiry cannot be observed; instead this watches the nodes bucket, remembers
 * when each node last wrote, and checks that against `deadAfterMs` a few times per window.
 */
export class MembershipMonitor {
  readonly #kv: KV;
  readonly #deadAfterMs: number;
  readonly #emit: (ev: MembershipEvent) => void;
  readonly #lastSeen = new Map<string, { at: number; revision: number }>();
  #watch: { stop(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(kv: KV, deadAfterMs: number, emit: (ev: MembershipEvent) => void) {
    this.#kv = kv;
    this.#deadAfterMs = deadAfterMs;
    this.#emit = emit;
  }

  async start(): Promise<void> {
    const it = await this.#kv.watch({ key: '>' });
    this.#watch = it;
    void (async () => {
      for await (const e of it) {
        if (e.operation !== 'PUT') {
          this.#lastSeen.delete(e.key);
          continue;
        }
        // Records replayed at start may be old (a node killed a moment ago): date them by the server.
        const at = e.isUpdate ? Date.now() : Math.min(Date.now(), e.created.getTime());
        this.#lastSeen.set(e.key, { at, revision: e.revision });
      }
    })();
    this.#timer = setInterval(() => this.#check(), Math.max(50, Math.min(250, this.#deadAfterMs / 10)));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#watch?.stop();
  }

  #check(): void {
    const now = Date.now();
    for (const [nodeId, seen] of this.#lastSeen) {
      const silentForMs = now - seen.at;
      if (silentForMs <= this.#deadAfterMs) continue;
      this.#lastSeen.delete(nodeId);
      this.#emit({ kind: 'dead', nodeId, revision: seen.revision, at: now, silentForMs });
    }
  }
}
