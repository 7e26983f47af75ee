import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CheckpointInvalid } from '../errors.js';
import { contextLimit, type LlamaWeights, type LoadOptions } from '../llama/weights.js';
import { openCheckpoint, reasonOf } from './file.js';
import { loadGguf } from './gguf-llama.js';
import { loadLlama2c } from './llama2c.js';
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
  const file = await openCheckpoint(path);
  const magic = Buffer.alloc(4);
  try {
    await file.read(magic, 0, 4, 0);
  } catch (cause) {
    throw new CheckpointInvalid(path, `cannot read the file (${reasonOf(cause)})`, { cause });
  } finally {
    await file.close();
  }
  if (magic.toString('latin1') === 'GGUF') {
    const { weights, tokenizer } = await loadGguf(path, { maxContext });
    return { format: 'gguf', weights, tokenizer };
  }
  const weights = await loadLlama2c(path, { maxContext });
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
  const tokenizer =
    tokenizerPath === undefined ? null : await loadTokenizerBin(tokenizerPath, weights.config.vocab);
  return { format: 'llama2c', weights, tokenizer };
}
