import { InvalidOptions } from '../errors.js';
import type { Device, DeviceLoad } from './capabilities.js';

/** Gives back a slot taken with `DeviceSlots.acquire`; a second call does nothing. */
export type ReleaseSlot = () => void;

/**
 * The execution slots of one device: at most `slots` holders at once, the rest wait first come first
 * served. Waiters are activations' running turns, so each activation's concurrency bounds the queue.
 */
export class DeviceSlots {
  #busy = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    readonly device: string,
    readonly modelled: boolean,
    readonly slots: number,
  ) {}

  acquire(): Promise<ReleaseSlot> {
    if (this.#busy < this.slots) {
      this.#busy++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#releaser())));
  }

  load(): DeviceLoad {
    return {
      device: this.device,
      modelled: this.modelled,
      slots: this.slots,
      busy: this.#busy,
      queued: this.#waiting.length,
    };
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
