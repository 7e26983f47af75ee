import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckpointInvalid } from '../errors.js';
import { contextLimit, type LlamaWeights, type LoadOptions } from '../llama/weights.js';
import { openCheckpoint, reasonOf } from './file.js';
import { ggufTokenizer, loadGguf } from './gguf-llama.js';
import { llama2cVocab, loadLlama2c } from './llama2c.js';
import { loadTokenizerBin, type Tokenizer } from './tokenizer.js';

export interface Checkpoint {
  format: 'llama2c' | 'gguf';
  weights: LlamaWeights;
  /** GGUF: from the file. llama2.c: `options.tokenizer`, else `tokenizer.bin` beside the checkpoint, else none. */
  tokenizer: Tokenizer | null;
}

/**
 * Loads a llama2.c or GGUF checkpoint (told apart by the GGUF magic) and its tokenizer; the model's
 * context (its KV cache) is cut to `maxContext` (default `DEFAULT_MAX_CONTEXT`, 4096).
 */
export async function loadCheckpoint(
  path: string,
  options: { tokenizer?: string } & LoadOptions = {},
): Promise<Checkpoint> {
  const maxContext = contextLimit(options.maxContext);
  if ((await formatOf(path)) === 'gguf') {
    const { weights, tokenizer } = await loadGguf(path, { maxContext });
    return { format: 'gguf', weights, tokenizer };
  }
  const weights = await loadLlama2c(path, { maxContext });
  return {
    format: 'llama2c',
    weights,
    tokenizer: await besideTokenizer(path, options, weights.config.vocab),
  };
}

/**
 * A checkpoint's tokenizer alone, as `loadCheckpoint` finds it, without reading the weights: what
 * tokenize and detokenize need, on nodes that run no layer (a 7B model's weights are 28 GB of f32).
 */
export async function loadCheckpointTokenizer(
  path: string,
  options: { tokenizer?: string } = {},
): Promise<Tokenizer | null> {
  if ((await formatOf(path)) === 'gguf') return ggufTokenizer(path);
  return besideTokenizer(path, options, await llama2cVocab(path));
}

async function formatOf(path: string): Promise<Checkpoint['format']> {
  const file = await openCheckpoint(path);
  const magic = Buffer.alloc(4);
  try {
    await file.read(magic, 0, 4, 0);
  } catch (cause) {
    throw new CheckpointInvalid(path, `cannot read the file (${reasonOf(cause)})`, { cause });
  } finally {
    await file.close();
  }
  return magic.toString('latin1') === 'GGUF' ? 'gguf' : 'llama2c';
}

/** A llama2.c checkpoint's tokenizer: `options.tokenizer`, else `tokenizer.bin` beside it, else none. */
async function besideTokenizer(
  path: string,
  options: { tokenizer?: string },
  vocab: number,
): Promise<Tokenizer | null> {
  let tokenizerPath = options.tokenizer;
  if (tokenizerPath === undefined) {
    const beside = join(dirname(path), 'tokenizer.bin');
    if (
      await access(beside).then(
        () => true,
        () => false,
      )
    )
      tokenizerPath = beside;
  }
  return tokenizerPath === undefined ? null : loadTokenizerBin(tokenizerPath, vocab);
}
