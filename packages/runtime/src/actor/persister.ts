import type { Clock, Timer } from '../clock.js';

/** How often a fast-mode actor's snapshot reaches the state bucket while it runs. */
export interface PersistPolicy {
  /** Save at most this long after the first change not yet saved. */
  everyMs?: number;
  /** Save once this many messages were applied since the last save. */
  everyMessages?: number;
}

export interface PersistMetrics {
  /** Saves that reached the state bucket. */
  saves: number;
  /** Messages applied since the last save began (0: what the actor holds is stored). */
  unsaved: number;
}

/**
 * Saves a fast-mode actor's snapshot in the background, so that a node killed with SIGKILL loses at
 * most `everyMessages` messages or `everyMs` of its actors' state (a graceful stop saves everything).
 * One save runs at a time; changes during it are saved by the next one.
 */
export class Persister {
  #unsaved = 0;
  #saves = 0;
  #timer: Timer | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  constructor(
    readonly policy: PersistPolicy,
    private readonly clock: Clock,
    private readonly save: () => Promise<void>,
    private readonly failed: (err: unknown) => void,
  ) {}

  metrics(): PersistMetrics {
    return { saves: this.#saves, unsaved: this.#unsaved };
  }

  /** One message was applied. */
  changed(): void {
    this.#unsaved++;
    if (this.policy.everyMessages !== undefined && this.#unsaved >= this.policy.everyMessages) {
      void this.flush();
      return;
    }
    if (this.policy.everyMs !== undefined && !this.#timer)
      this.#timer = this.clock.after(this.policy.everyMs, () => {
        this.#timer = undefined;
        void this.flush();
      });
  }

  /** Saves now (after the save in flight, if any); resolves once what was applied before the call is saved. */
  flush(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    if (this.#unsaved === 0) return Promise.resolve();
    const saving = this.#unsaved;
    this.#unsaved = 0;
    this.#running = this.save()
      .then(
        () => {
          this.#saves++;
        },
        (err: unknown) => {
          this.#unsaved += saving;
          this.failed(err);
        },
      )
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          void this.flush();
        }
      });
    return this.#running;
  }

  /** Stops the timer; the caller saves the final snapshot itself. */
  close(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    return this.#running ?? Promise.resolve();
  }
}
