import {
  DEFAULT_MAX_CONTEXT,
  fusedDecode,
  KernelRuntime,
  kernelOps,
  Llama,
  loadCheckpoint,
  probeHost,
  sampler,
  TokenizerInvalid,
} from '@stitch/kernels';
import { type Command, Option } from 'commander';
import { integer, nonNegative } from '../number-options.js';

interface RunOptions {
  checkpoint: string;
  tokenizer?: string;
  prompt: string;
  steps: number;
  temperature: number;
  seed: number;
  quant?: 'q8_0';
  maxContext: number;
}

export function registerLlm(program: Command): void {
  const llm = program.command('llm').description('Run Llama-architecture checkpoints on compiled kernels');
  llm
    .command('run')
    .description('Generate text from a llama2.c or GGUF checkpoint, printing tokens as they are made')
    .requiredOption('--checkpoint <file>', 'llama2.c .bin or GGUF (f32, f16, q8_0) checkpoint')
    .option(
      '--tokenizer <file>',
      'llama2.c tokenizer.bin (default: the one beside the checkpoint; GGUF carries its own)',
    )
    .option('--prompt <text>', 'text to continue', '')
    .addOption(
      new Option('--steps <n>', 'tokens to generate (at most the context left)')
        .argParser(integer(1))
        .default(256),
    )
    .addOption(
      new Option('--temperature <x>', '0 = greedy; else sample softmax(logits / x)')
        .argParser(nonNegative)
        .default(0),
    )
    .addOption(new Option('--seed <n>', 'seed of the sampler').argParser(integer(0)).default(1))
    .addOption(
      new Option('--max-context <n>', "positions kept (the KV cache's length), at most the checkpoint's")
        .argParser(integer(1))
        .default(DEFAULT_MAX_CONTEXT),
    )
    .addOption(
      new Option('--quant <type>', 'decode with the matrices quantized (¼ of the bytes per token)').choices([
        'q8_0',
      ]),
    )
    .action((opts: RunOptions) => run(opts));
}

async function run(opts: RunOptions): Promise<void> {
  const { weights, tokenizer, format } = await loadCheckpoint(opts.checkpoint, {
    tokenizer: opts.tokenizer,
    maxContext: opts.maxContext,
  });
  if (!tokenizer) {
    throw new TokenizerInvalid(
      opts.checkpoint,
      'no tokenizer.bin beside this llama2.c checkpoint; pass --tokenizer',
    );
  }
  const c = weights.config;
  const target = probeHost().x86Level ?? 'x86-64';
  process.stderr.write(
    `${format} checkpoint: dim ${c.dim}, ${c.layers} layers, ${c.heads}/${c.kvHeads} heads, vocab ${c.vocab}, ` +
      `context ${c.seqLen}; kernels for ${target}${opts.quant ? `, ${opts.quant} decode` : ''}\n`,
  );
  const runtime = new KernelRuntime();
  const model = new Llama(
    weights,
    await kernelOps(c, runtime, { target }),
    await fusedDecode(weights, runtime, { target, ...(opts.quant ? { quant: opts.quant } : {}) }),
  );
  const prompt = tokenizer.encode(opts.prompt);
  const steps = Math.min(opts.steps, c.seqLen - prompt.length);
  // Bytes of a multi-byte character may arrive in separate tokens: decode them as a stream.
  const text = new TextDecoder('utf-8');
  process.stdout.write(opts.prompt);
  let prev = prompt[prompt.length - 1]!;
  const started = performance.now();
  let made = 0;
  for await (const token of model.stream(prompt, steps, sampler(opts.temperature, opts.seed))) {
    if (token === tokenizer.eos || token === tokenizer.bos) break;
    process.stdout.write(text.decode(tokenizer.piece(prev, token), { stream: true }));
    prev = token;
    made++;
  }
  process.stdout.write(`${text.decode()}\n`);
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(
    `${made} tokens in ${seconds.toFixed(2)} s (${(made / seconds).toFixed(1)} tokens/s)\n`,
  );
}
