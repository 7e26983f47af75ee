import type { KV } from '@nats-io/kv';
import type { Clock, Timer } from '../clock.js';
import type { Guard } from '../guard.js';

/** Published on `stitch.<cluster>.membership` as JSON. */
export interface MembershipEvent {
  /** `drain`: the node is about to leave and asks for its actors to be moved off it while it runs. */
  kind: 'join' | 'leave' | 'dead' | 'drain';
  nodeId: string;
  /** KV revision of the node's last record: with `kind` and `nodeId` it identifies the event. */
  revision: number;
  /** Epoch ms when the event was observed. */
  at: number;
  /** `dead` only: how long after the last heartbeat the node was declared dead. */
  silentForMs?: number;
}

const KINDS = new Set(['join', 'leave', 'dead', 'drain']);
/** Nodes the monitor tracks at most; a bucket flooded with keys cannot grow it further. */
const MAX_TRACKED_NODES = 100_000;

/** A membership event from its JSON bytes, or undefined when they are not one. */
export function parseMembershipEvent(data: Uint8Array): MembershipEvent | undefined {
  let v: Partial<MembershipEvent> | null;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<MembershipEvent> | null;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  if (!KINDS.has(v.kind as string) || typeof v.nodeId !== 'string' || v.nodeId.length > 200) return undefined;
  if (!Number.isSafeInteger(v.revision) || typeof v.at !== 'number') return undefined;
  const ev: MembershipEvent = { kind: v.kind!, nodeId: v.nodeId, revision: v.revision!, at: v.at };
  if (typeof v.silentForMs === 'number') ev.silentForMs = v.silentForMs;
  return ev;
}

/**
 * Declares a node dead when its heartbeat stops. nats-server 2.9 removes an expired KV key without
 * telling watchers, so expiry cannot be observed; instead this watches the nodes bucket, remembers
 * when each node last wrote, and checks that against `deadAfterMs` a few times per window.
 */
export class MembershipMonitor {
  readonly #kv: KV;
  readonly #deadAfterMs: number;
  readonly #clock: Clock;
  readonly #emit: (ev: MembershipEvent) => void;
  readonly #guard: Guard;
  readonly #lastSeen = new Map<string, { at: number; revision: number }>();
  #watch: { stop(): void } | undefined;
  #timer: Timer | undefined;

  constructor(kv: KV, deadAfterMs: number, clock: Clock, emit: (ev: MembershipEvent) => void, guard: Guard) {
    this.#kv = kv;
    this.#guard = guard;
    this.#deadAfterMs = deadAfterMs;
    this.#clock = clock;
    this.#emit = emit;
  }

  async start(): Promise<void> {
    const it = await this.#kv.watch({ key: '>' });
    this.#watch = it;
    // Only the key, revision and time of an entry are read, never its value; still, whatever one entry
    // throws is reported and skipped, never ending the watch.
    void this.#guard.each('membership watch', it, (e) => {
      if (e.operation !== 'PUT') {
        this.#lastSeen.delete(e.key);
        return;
      }
      // Records replayed at start may be old (a node killed a moment ago): date them by the server.
      const now = this.#clock.now();
      const created = e.created.getTime();
      const at = e.isUpdate || !Number.isFinite(created) ? now : Math.min(now, created);
      if (this.#lastSeen.size < MAX_TRACKED_NODES || this.#lastSeen.has(e.key))
        this.#lastSeen.set(e.key, { at, revision: e.revision });
    });
    this.#timer = this.#clock.every(Math.max(50, Math.min(250, this.#deadAfterMs / 10)), () =>
      this.#guard.run('membership monitor', () => this.#check()),
    );
  }

  stop(): void {
    this.#timer?.cancel();
    this.#watch?.stop();
  }

  #check(): void {
    const now = this.#clock.now();
    for (const [nodeId, seen] of this.#lastSeen) {
      const silentForMs = now - seen.at;
      if (silentForMs <= this.#deadAfterMs) continue;
      this.#lastSeen.delete(nodeId);
      this.#emit({ kind: 'dead', nodeId, revision: seen.revision, at: now, silentForMs });
    }
  }
}
