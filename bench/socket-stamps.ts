// Preloaded (`--import`) into both processes of bench/serial-gap: stamps every socket read and write
// to the nats-server whose port is in STITCH_STAMP_PORT, so that a serial round trip can be cut into
// the caller's work, the server's two hops and the responder's work. Diagnostic only: the patching
// costs a little on every read and write, alike in every mode. Times are epoch ms (µs resolution), so
// stamps from the two processes line up.
import net from 'node:net';

/** What a stamp marks. */
export const Stamp = { read: 0, writeStart: 1, writeEnd: 2 } as const;

/** What one process recorded: `kinds[i]` (a Stamp) happened at `times[i]`. */
export interface Stamps {
  kinds: number[];
  times: number[];
}

let port = 0;
const kinds: number[] = [];
const times: number[] = [];
let on = false;

const now = () => performance.timeOrigin + performance.now();
const watched = (s: net.Socket) => on && s.remotePort === port;

const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<typeof write>) {
  if (!watched(this)) return write.apply(this, args);
  kinds.push(Stamp.writeStart);
  times.push(now());
  const result = write.apply(this, args);
  kinds.push(Stamp.writeEnd);
  times.push(now());
  return result;
} as typeof write;

const emit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
  if (event === 'data' && watched(this)) {
    kinds.push(Stamp.read);
    times.push(now());
  }
  return emit.apply(this, [event, ...args] as never);
} as typeof emit;

/** Starts recording afresh. */
export function startStamps(): void {
  // Read here, not at load: bench/serial-gap sets it once its server runs, before it forks the responder.
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: set by bench/serial-gap
  port = Number(process.env.STITCH_STAMP_PORT);
  kinds.length = 0;
  times.length = 0;
  on = true;
}

/** Stops recording and returns what was recorded. */
export function takeStamps(): Stamps {
  on = false;
  return { kinds: kinds.splice(0), times: times.splice(0) };
}

// In the responder, the bench drives the same two calls over IPC.
if (process.send) {
  process.on('message', (m) => {
    if (m === 'stamps:start') {
      startStamps();
      process.send?.('stamps:started');
    } else if (m === 'stamps:take') process.send?.({ stamps: takeStamps() });
  });
}
