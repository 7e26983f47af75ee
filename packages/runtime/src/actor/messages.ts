import { BadMessage } from '../errors.js';
import type { AnyActorDefinition } from './definition.js';

/** Messages every actor answers itself (see Activation's #accept); handler names cannot start with `$`. */
const SYSTEM_MESSAGES = new Set(['$inspect', '$outcome']);

/** `value` as a message `def` handles (or, asked directly, a system message); BadMessage otherwise. */
export function checkMessage(
  def: AnyActorDefinition,
  actor: string,
  value: unknown,
  /** A request on the actor's subject, which may be a system message: answered at once, never queued. */
  request = false,
): { type: string } {
  const msg = value as { type?: unknown } | null;
  if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') {
    throw new BadMessage(`${actor} got a message that is not an object with a string "type"`);
  }
  if (msg.type.startsWith('$')) {
    if (!SYSTEM_MESSAGES.has(msg.type))
      throw new BadMessage(
        `${actor} got "${msg.type}": no such system message (there are ${[...SYSTEM_MESSAGES].join(' and ')})`,
      );
    if (!request)
      throw new BadMessage(`${actor} answers "${msg.type}" only when asked directly, not in durable mode`);
  } else if (!Object.hasOwn(def.handlers, msg.type)) {
    throw new BadMessage(
      `${actor} has no handler "${msg.type}" (it has ${Object.keys(def.handlers).join(', ')})`,
    );
  }
  return msg as { type: string };
}
