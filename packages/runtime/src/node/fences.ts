import { checkToken } from '../cluster/names.js';
import { InvalidOptions, StaleFence } from '../errors.js';

/** Fence names a node tracks at most (one per kind of commander: `coordinator`, …). */
const MAX_FENCES = 16;

/**
 * The newest fencing epoch a node has seen per commander name. A command with an older epoch is
 * refused (StaleFence): its sender lost the lease that made it the commander. Commands without a
 * fence (clients activating actors) are not fenced. Only commands on the control subject, which the
 * server's permissions keep for coordinators and operators, move an epoch on: activations, which
 * any client may ask for, are compared and never recorded, so a client cannot claim an epoch that
 * would lock the real commander out.
 */
export class Fences {
  readonly #newest = new Map<string, number>();

  /** Throws InvalidOptions for a malformed fence and StaleFence for an old one; records nothing. */
  refuseStale(fence: unknown): void {
    this.#parse(fence);
  }

  /** refuseStale, then records the fence as its name's newest. */
  advance(fence: unknown): void {
    const f = this.#parse(fence);
    if (!f) return;
    if (!this.#newest.has(f.name) && this.#newest.size >= MAX_FENCES)
      throw new InvalidOptions(`this node already tracks ${MAX_FENCES} fence names`);
    this.#newest.set(f.name, f.epoch);
  }

  #parse(fence: unknown): { name: string; epoch: number } | undefined {
    if (fence === undefined || fence === null) return undefined;
    const f = fence as { name?: unknown; epoch?: unknown };
    const name = checkToken('fence name', f.name);
    const epoch = f.epoch;
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 1)
      throw new InvalidOptions('a fence epoch is an integer ≥ 1');
    const newest = this.#newest.get(name);
    if (newest !== undefined && epoch < newest) throw new StaleFence(name, epoch, newest);
    return { name, epoch };
  }
}
