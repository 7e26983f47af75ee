import { InvalidOptions } from '../errors.js';
import type { ReleaseSlot } from '../node/slots.js';
import type { ReminderOptions } from '../reminders/record.js';
import type { ReminderStore } from '../reminders/store.js';
import type { TurnStream } from '../stream/writer.js';
import type { Envelope } from '../wire/envelope.js';
import { isTraceparent, newTraceparent } from '../wire/envelope.js';
import type { ActorContext, ActorRef, ActorRefData, AnyActorDefinition } from './definition.js';
import type { Host } from './host.js';

/** The context of one turn; a class so that a turn allocates one small object and no closure. */
export class TurnContext implements ActorContext {
  readonly #host: Host;
  readonly #env: Envelope;

  readonly #turns: { waitedForSlot(ms: number): void };

  constructor(
    host: Host,
    readonly self: ActorRef,
    env: Envelope,
    turns: { waitedForSlot(ms: number): void },
    readonly stream: TurnStream | undefined = undefined,
  ) {
    this.#host = host;
    this.#env = env;
    this.#turns = turns;
  }

  get nodeId(): string {
    return this.#host.nodeId;
  }
  /** Checked here, on use, rather than for every message of a batch. */
  get traceparent(): string {
    if (!isTraceparent(this.#env.traceparent)) this.#env.traceparent = newTraceparent();
    return this.#env.traceparent;
  }
  get sender(): string {
    return this.#env.sender;
  }
  get idempotencyKey(): string | undefined {
    return this.#env.idempotencyKey;
  }
  get deadline(): number {
    return this.#env.deadline;
  }
  ref<D extends AnyActorDefinition = AnyActorDefinition>(data: ActorRefData): ActorRef<D> {
    return this.#host.ref(data) as unknown as ActorRef<D>;
  }
  setReminder(name: string, options: ReminderOptions): Promise<void> {
    return this.#reminderStore().then((s) => s.set(this.self, name, options));
  }
  cancelReminder(name: string): Promise<void> {
    return this.#reminderStore().then((s) => s.cancel(this.self, name));
  }
  #reminderStore(): Promise<ReminderStore> {
    const store = this.#host.reminders;
    return store
      ? Promise.resolve(store)
      : Promise.reject(
          new InvalidOptions(`node ${this.#host.nodeId} keeps no reminders; run the actor on a cluster node`),
        );
  }
  acquireSlot(device: string): Promise<ReleaseSlot> {
    const slots = this.#host.deviceSlots(device);
    if (!slots)
      return Promise.reject(
        new InvalidOptions(
          `node ${this.#host.nodeId} has no device "${device}"; start it with that device (e.g. --virtual ${device})`,
        ),
      );
    const t0 = performance.now();
    return slots.acquire().then((release) => {
      this.#turns.waitedForSlot(performance.now() - t0);
      return release;
    });
  }
}
