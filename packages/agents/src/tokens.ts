import { setImmediate } from 'node:timers/promises';
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

/**
 * BPE merges a run of letters (one piece of its split) in time quadratic in the run's length: 16 000
 * letters in a row took 15 s. Runs longer than this are counted in slices of it (an estimate there,
 * as for other model families).
 */
const MAX_RUN_CHARS = 256;
const LONG_RUN = /\S{257,}/g;
/** Text is counted this much at a time, the event loop getting a turn between (1 MiB took 164 ms). */
const SLICE_CHARS = 64 * 1024;

export async function countTokens(text: string): Promise<number> {
  return count(await bpe(), text);
}

/** Prompt tokens of a chat as OpenAI counts them: 3 per message for its framing, 3 to prime the reply. */
export async function countChatTokens(
  messages: readonly { role: string; content: string }[],
): Promise<number> {
  const enc = await bpe();
  let n = 3;
  for (const m of messages) n += 3 + (await count(enc, m.role)) + (await count(enc, m.content));
  return n;
}

async function count(enc: Tiktoken, text: string): Promise<number> {
  let n = 0;
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + SLICE_CHARS);
    // At a space where there is one, so that words are counted whole.
    const space = end < text.length ? text.lastIndexOf(' ', end) : -1;
    if (space > at) end = space;
    n += countSlice(enc, text.slice(at, end));
    at = end;
    if (at < text.length) await setImmediate();
  }
  return n;
}

function countSlice(enc: Tiktoken, text: string): number {
  let n = 0;
  let at = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    n += enc.encode(text.slice(at, run.index)).length;
    for (let i = 0; i < run[0].length; i += MAX_RUN_CHARS)
      n += enc.encode(run[0].slice(i, i + MAX_RUN_CHARS)).length;
    at = run.index + run[0].length;
  }
  return n + enc.encode(text.slice(at)).length;
}
