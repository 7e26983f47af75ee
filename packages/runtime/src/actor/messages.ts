import { BadMessage } from '../errors.js';
import type { AnyActorDefinition } from './definition.js';

/** `value` as a message `def` handles (or a `$` system message); BadMessage otherwise. */
export function checkMessage(def: AnyActorDefinition, actor: string, value: unknown): { type: string } {
  const msg = value as { type?: unknown } | null;
  if (typeof msg !== 'object' || msg === null || typeof msg.type !== 'string') {
    throw new BadMessage(`${actor} got a message that is not an object with a string "type"`);
  }
  if (!msg.type.startsWith('$') && !Object.hasOwn(def.handlers, msg.type)) {
    throw new BadMessage(
      `${actor} has no handler "${msg.type}" (it has ${Object.keys(def.handlers).join(', ')})`,
    );
  }
  return msg as { type: string };
}
