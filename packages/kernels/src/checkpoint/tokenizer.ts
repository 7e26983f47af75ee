// The Llama (SentencePiece-style) BPE tokenizer with scores, encoding exactly as llama2.c's `encode`
// does: a dummy-prefix space, UTF-8 code points looked up whole or else as `<0xXX>` byte tokens, then
// repeated merging of the adjacent pair whose concatenation is the vocabulary's best-scoring piece.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { TokenizerInvalid } from '../errors.js';

const MAX_TOKEN_BYTES = 1024;
const MAX_VOCAB = 1 << 20;
/** Longest text `encode` takes: its merge loop is quadratic in the number of pieces. */
export const MAX_ENCODE_BYTES = 1 << 16;

/** Pieces are compared as byte strings: latin1 maps each byte to one UTF-16 unit and back. */
const bytesKey = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class Tokenizer {
  private readonly ids = new Map<string, number>();
  private readonly keys: string[];

  /**
   * @param pieces each token's bytes (llama2.c's spelling: spaces, not SentencePiece's '▁')
   * @param scores merge priority per token: higher merges first
   */
  constructor(
    readonly pieces: Uint8Array[],
    readonly scores: Float32Array,
    readonly bos = 1,
    readonly eos = 2,
  ) {
    const n = pieces.length;
    if (scores.length !== n)
      throw new TokenizerInvalid('tokenizer', `${n} pieces but ${scores.length} scores`);
    const isId = (t: unknown) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < n;
    if (!(isId(bos) && isId(eos))) {
      throw new TokenizerInvalid(
        'tokenizer',
        `bos ${String(bos)} or eos ${String(eos)} is not an integer token id in 0..${n - 1} (the vocabulary)`,
      );
    }
    this.keys = pieces.map(bytesKey);
    // llama2.c's binary search finds one of several equal pieces; the first is as good and deterministic.
    this.keys.forEach((k, i) => {
      if (!this.ids.has(k)) this.ids.set(k, i);
    });
  }

  get vocab(): number {
    return this.pieces.length;
  }

  /** Token ids of `text` (optionally with BOS first and EOS last). */
  encode(text: string, options: { bos?: boolean; eos?: boolean } = {}): number[] {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > MAX_ENCODE_BYTES) {
      throw new TokenizerInvalid('encode', `text of ${bytes.length} bytes is over ${MAX_ENCODE_BYTES}`);
    }
    const tokens: number[] = [];
    if (options.bos ?? true) tokens.push(this.bos);
    const space = this.ids.get(' ');
    if (bytes.length > 0 && space !== undefined) tokens.push(space);
    for (let i = 0; i < bytes.length; ) {
      // A code point: a lead byte and its continuation bytes (at most 4 bytes, as llama2.c cuts them).
      let end = i + 1;
      while (end < bytes.length && end - i < 4 && (bytes[end]! & 0xc0) === 0x80) end++;
      const id = this.ids.get(bytes.toString('latin1', i, end));
      if (id !== undefined) tokens.push(id);
      else for (let b = i; b < end; b++) tokens.push(this.byteToken(bytes[b]!));
      i = end;
    }
    for (;;) {
      let best = -1e10;
      let bestId = -1;
      let bestAt = -1;
      for (let i = 0; i + 1 < tokens.length; i++) {
        const id = this.ids.get(this.keys[tokens[i]!]! + this.keys[tokens[i + 1]!]!);
        if (id !== undefined && this.scores[id]! > best) {
          best = this.scores[id]!;
          bestId = id;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      tokens.splice(bestAt, 2, bestId);
    }
    if (options.eos) tokens.push(this.eos);
    return tokens;
  }

  /** The bytes `token` stands for after `prev` (llama2.c: a leading space after BOS is dropped). */
  piece(prev: number, token: number): Uint8Array {
    const p = this.pieces[token];
    if (p === undefined) throw new TokenizerInvalid('decode', `token ${token} is outside the vocabulary`);
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(this.keys[token]!);
    if (byte) return Uint8Array.of(Number.parseInt(byte[1]!, 16));
    return prev === this.bos && p[0] === 0x20 ? p.subarray(1) : p;
  }

  /** Text of a token sequence (BOS and EOS themselves print as nothing). */
  decode(tokens: number[]): string {
    const parts: Uint8Array[] = [];
    tokens.forEach((t, i) => {
      if (t !== this.bos && t !== this.eos) parts.push(this.piece(i > 0 ? tokens[i - 1]! : -1, t));
    });
    return Buffer.concat(parts).toString('utf8');
  }

  private byteToken(b: number): number {
    const id = this.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    if (id === undefined) {
      throw new TokenizerInvalid(
        'encode',
        `byte 0x${b.toString(16)} has no piece and no <0xXX> fallback token`,
      );
    }
    return id;
  }
}

/** Reads llama2.c's tokenizer.bin: max_token_length, then per token score (f32), length (i32), bytes. */
export async function loadTokenizerBin(path: string, vocab: number): Promise<Tokenizer> {
  const fail = (detail: string): never => {
    throw new TokenizerInvalid(path, detail);
  };
  if (!(Number.isInteger(vocab) && vocab > 2 && vocab <= MAX_VOCAB))
    fail(`vocabulary size ${vocab} is out of range`);
  let buf: Buffer;
  try {
    // Its size is checked first: the longest file `vocab` tokens can make, and never read whole past it.
    const st = await stat(path);
    if (!st.isFile()) fail('this is not a regular file: name the tokenizer.bin file itself');
    const most = 4 + vocab * (8 + MAX_TOKEN_BYTES);
    if (st.size > most) {
      fail(
        `the file has ${st.size} bytes, more than ${most} (${vocab} tokens of at most ${MAX_TOKEN_BYTES} bytes)`,
      );
    }
    buf = await readFile(path);
  } catch (cause) {
    if (cause instanceof TokenizerInvalid) throw cause;
    const reason = (cause as { code?: unknown }).code ?? 'unreadable';
    throw new TokenizerInvalid(path, `cannot read the file (${String(reason)})`, { cause });
  }
  let off = 0;
  const word = (read: (at: number) => number) => {
    if (off + 4 > buf.length) fail(`the file ends after ${off} bytes, before all ${vocab} tokens were read`);
    off += 4;
    return read(off - 4);
  };
  const int = () => word((at) => buf.readInt32LE(at));
  const maxLen = int();
  if (maxLen < 1 || maxLen > MAX_TOKEN_BYTES)
    fail(`max_token_length ${maxLen} is not in 1..${MAX_TOKEN_BYTES}`);
  const scores = new Float32Array(vocab);
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < vocab; i++) {
    scores[i] = word((at) => buf.readFloatLE(at));
    const len = int();
    if (len < 0 || len > maxLen) fail(`token ${i} has length ${len}, outside 0..max_token_length ${maxLen}`);
    if (off + len > buf.length) fail(`token ${i} runs past the end of the file`);
    pieces.push(Uint8Array.from(buf.subarray(off, off + len)));
    off += len;
  }
  if (off !== buf.length)
    fail(`${buf.length - off} bytes follow the last of ${vocab} tokens; is the vocabulary size right?`);
  return new Tokenizer(pieces, scores);
}

/** Writes llama2.c's tokenizer.bin (tests make small ones). */
export async function writeTokenizerBin(path: string, tokenizer: Tokenizer): Promise<void> {
  const maxLen = Math.max(1, ...tokenizer.pieces.map((p) => p.length));
  const parts: Buffer[] = [Buffer.from(Int32Array.of(maxLen).buffer)];
  tokenizer.pieces.forEach((p, i) => {
    const head = Buffer.alloc(8);
    head.writeFloatLE(tokenizer.scores[i]!, 0);
    head.writeInt32LE(p.length, 4);
    parts.push(head, Buffer.from(p));
  });
  await writeFile(path, Buffer.concat(parts));
}
