import type { Tiktoken } from 'js-tiktoken/lite';

let encoder: Promise<Tiktoken> | undefined;

/**
 * The o200k_base BPE (GPT-4o's), loaded on first use: its ranks are 2 MB of JavaScript that most
 * processes never need. For other model families the count is an estimate of the same order.
 */
function bpe(): Promise<Tiktoken> {
  encoder ??= (async () => {
    const [{ Tiktoken }, { default: ranks }] = await Promise.all([
      import('js-tiktoken/lite'),
      import('js-tiktoken/ranks/o200k_base'),
    ]);
    return new Tiktoken(ranks);
  })();
  return encoder;
}

export async function countTokens(text: string): Promise<number> {
  return (await bpe()).encode(text).length;
}

/** Prompt tokens of a chat as OpenAI counts them: 3 per message for its framing, 3 to prime the reply. */
export async function countChatTokens(
  messages: readonly { role: string; content: string }[],
): Promise<number> {
  const enc = await bpe();
  let n = 3;
  for (const m of messages) n += 3 + enc.encode(m.role).length + enc.encode(m.content).length;
  return n;
}
