import { InvalidOptions } from '../errors.js';
import type { Device, DeviceLoad } from './capabilities.js';

/** Gives back a slot taken with `Slots.acquire`; a second call does nothing. */
export type ReleaseSlot = () => void;

/** Slots as they are used now: how many there are, held, and waited for. */
export interface SlotsInUse {
  slots: number;
  busy: number;
  queued: number;
}

/**
 * At most `slots` holders at once, the rest wait first come first served. Waiters are activations'
 * running turns, so each activation's concurrency bounds the queue.
 */
export class Slots {
  #busy = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(readonly slots: number) {}

  /** A slot now, when one is free and nobody waits for one; otherwise undefined (then `acquire`). */
  tryAcquire(): ReleaseSlot | undefined {
    if (this.#busy >= this.slots) return undefined;
    this.#busy++;
    return this.#releaser();
  }

  acquire(): Promise<ReleaseSlot> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#releaser())));
  }

  /** Holders and waiters now. */
  inUse(): SlotsInUse {
    return { slots: this.slots, busy: this.#busy, queued: this.#waiting.length };
  }

  #releaser(): ReleaseSlot {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      // The slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#busy--;
    };
  }
}

/** The execution slots of one device (see Slots). */
export class DeviceSlots extends Slots {
  constructor(
    readonly device: string,
    readonly modelled: boolean,
    slots: number,
  ) {
    super(slots);
  }

  load(): DeviceLoad {
    return { device: this.device, modelled: this.modelled, ...this.inUse() };
  }
}

/**
 * The slots of a probed or modelled device, under the name an operator asks for: `cpu` (its cores),
 * `cuda:<index>` (one stream), or a modelled device's catalog id (its configured slots).
 */
export function slotsForDevice(d: Device): DeviceSlots {
  if (d.kind === 'cpu') return new DeviceSlots('cpu', false, Math.max(1, d.cores));
  if (d.kind === 'cuda') return new DeviceSlots(`cuda:${d.index}`, false, 1);
  return new DeviceSlots(d.catalogId, true, d.slots);
}

const VIRTUAL = /^([A-Za-z0-9_-]{1,64})(?::(\d{1,4}))?$/;

/**
 * A modelled device as `stitch node --virtual` names it: a catalog id, optionally with its slots
 * (`h100:4` runs four work items at once; plain `h100` runs one, like one batch at a time).
 */
export function parseVirtualDevice(spec: string): { catalogId: string; slots: number } {
  const m = VIRTUAL.exec(typeof spec === 'string' ? spec : '');
  const slots = m?.[2] === undefined ? 1 : Number(m[2]);
  if (!m || slots < 1)
    throw new InvalidOptions(
      `virtual device ${JSON.stringify(spec)} must be a catalog id, optionally with its slots (e.g. h100 or h100:4, slots ≥ 1)`,
    );
  return { catalogId: m[1]!, slots };
}
