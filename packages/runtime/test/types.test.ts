// Typing of `ref.ask`: a message must have exactly the fields of the handler it names. The checks are
// made by the root `tsc -p tsconfig.json --noEmit` (each `@ts-expect-error` fails the build when its
// line compiles); `typeChecks` is never called, so nothing here is sent anywhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ActorRef, type AnyActorDefinition, defineActor } from '../src/index.js';

const Counter = defineActor({
  type: 'counter',
  init: () => ({ n: 0 }),
  handlers: {
    add(s: { n: number }, m: { by: number }) {
      s.n += m.by;
      return s.n;
    },
    get: (s: { n: number }) => s.n,
    label: (_s: { n: number }, m: { name: string; tags?: string[] }) => `${m.name}:${m.tags?.length ?? 0}`,
  },
});

async function typeChecks(
  ref: ActorRef<typeof Counter>,
  anyRef: ActorRef<AnyActorDefinition>,
): Promise<void> {
  // Compiles: the handler's exact fields, with replies typed per handler.
  const added: number = await ref.ask({ type: 'add', by: 1 });
  const got: number = await ref.ask({ type: 'get' });
  const labelled: string = await ref.ask({ type: 'label', name: 'a' });
  await ref.ask({ type: 'label', name: 'a', tags: ['x'] }, { timeoutMs: 100, mode: 'durable' });
  await ref.tell({ type: 'add', by: 2 });

  // @ts-expect-error: a misspelt field (`bye` for `by`).
  await ref.ask({ type: 'add', bye: 1 });
  // @ts-expect-error: an extra field next to the right ones.
  await ref.ask({ type: 'add', by: 1, extra: true });
  // @ts-expect-error: a field for a handler that takes no message.
  await ref.ask({ type: 'get', by: 1 });
  // @ts-expect-error: a wrong field type.
  await ref.ask({ type: 'add', by: '1' });
  // @ts-expect-error: a missing field.
  await ref.ask({ type: 'add' });
  // @ts-expect-error: a handler the actor does not have.
  await ref.ask({ type: 'sub', by: 1 });
  // @ts-expect-error: the reply of `add` is a number.
  const wrongReply: string = await ref.ask({ type: 'add', by: 1 });
  // @ts-expect-error: tell checks its message too.
  await ref.tell({ type: 'add', bye: 1 });

  // Compiles: a ref whose definition is not known accepts any fields (the actor checks them).
  const anything: unknown = await anyRef.ask({ type: 'whatever', bye: 1, nested: { deep: [1, 2] } });
  await anyRef.ask({ type: 'add', by: 'not checked here' });
  await anyRef.tell({ type: 'anything' });
  await anyRef.tell({ type: 'anything', at: 1 });

  void [added, got, labelled, wrongReply, anything];
}

test('the typing checks compile (see tsc) and are never run', () => {
  assert.equal(typeof typeChecks, 'function');
  assert.equal(Counter.type, 'counter');
});
