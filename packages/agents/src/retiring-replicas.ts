import type { Cluster } from '@stitch/runtime';
import type { OpReplica } from './placement.js';

/**
 * Replicas dropped from a deployment's record (scaled in, or left out by a re-plan), stopped once
 * callers in other processes have read the new record (`retireMs` later): each finishes what it
 * queued first. `stop` stops those still waiting at once.
 */
export class RetiringReplicas {
  readonly #waiting = new Map<NodeJS.Timeout, () => Promise<void>>();
  #count = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly retireMs: number,
  ) {}

  /** Stops `replicas` `retireMs` from now. */
  retireLater(replicas: { type: string; replica: OpReplica }[]): void {
    if (replicas.length === 0) return;
    this.#count += replicas.length;
    const retire = async () => {
      this.#waiting.delete(timer);
      await Promise.all(
        replicas.map((r) =>
          this.cluster.stop({ type: r.type, id: r.replica.actorId }).catch(() => undefined),
        ),
      );
    };
    const timer = setTimeout(() => void retire(), this.retireMs);
    this.#waiting.set(timer, retire);
  }

  /** Replicas given to retireLater so far. */
  get count(): number {
    return this.#count;
  }

  /** Stops every replica still waiting, now. */
  stop(): Promise<void> {
    const retiring = [...this.#waiting].map(([timer, retire]) => {
      clearTimeout(timer);
      return retire();
    });
    this.#waiting.clear();
    return Promise.all(retiring).then(() => undefined);
  }
}
