import type { Attr } from './attrs.js';
import { IrError, IrErrorCode, type SourceLoc } from './errors.js';
import { PARSE_LIMITS, type ParseLimits } from './limits.js';

const IDENT_START = /[A-Za-z_]/;
const IDENT_CHAR = /[\w$.]/;

/** A defined alias: its value, and the characters and nesting that its uses stand for. */
interface Alias {
  readonly value: Attr;
  readonly chars: number;
  readonly depth: number;
}

/**
 * Character-level cursor over IR text with whitespace/comment skipping and located errors, plus the
 * parse-wide state the limits need: nesting depth and the aliases defined so far.
 */
export class Cursor {
  pos = 0;
  /** Current nesting of regions and attribute arrays/dictionaries (see `enter`). */
  private depth = 0;
  /** Deepest nesting reached so far; an alias definition records it for its uses. */
  private peakDepth = 0;
  /** Aliases by name, sigil included (`#map`, `!t`); null while the alias's own value is read. */
  private readonly aliases = new Map<string, Alias | null>();
  /** Characters that inlining every alias use read so far would add to the text. */
  private inlinedChars = 0;
  private readonly lineStarts: number[] = [0];

  constructor(
    readonly src: string,
    readonly limits: ParseLimits = PARSE_LIMITS,
  ) {
    for (let i = 0; i < src.length; i++) if (src[i] === '\n') this.lineStarts.push(i + 1);
  }

  /** Opens one level of nesting at `pos`; fails there past `maxDepth`. Pair with `leave`. */
  enter(pos: number): void {
    this.nest(1, pos);
    this.depth++;
  }

  /** Fails at `pos` when `levels` more nesting than now passes `maxDepth`. */
  private nest(levels: number, pos: number): void {
    const depth = this.depth + levels;
    if (depth > this.limits.maxDepth) {
      this.fail(
        `regions and attributes are nested more than ${this.limits.maxDepth} deep; flatten the graph or raise the parse option maxDepth`,
        pos,
      );
    }
    this.peakDepth = Math.max(this.peakDepth, depth);
  }

  leave(): void {
    this.depth--;
  }

  /** Fails at `pos` when a list already holds `count` of at most `maxAttrItems` items and gets another. */
  checkItems(count: number, pos: number, what: string): void {
    const max = this.limits.maxAttrItems;
    if (count >= max) {
      this.fail(`${what} has more than ${max} items; split it or raise the parse option maxAttrItems`, pos);
    }
  }

  /**
   * Defines alias `name` at `pos` (top level, so at depth 0) with the value `read` reads. Uses of an
   * alias share its value, so each records what it would cost inlined: without that, `#b = [#a, #a]`,
   * `#c = [#b, #b]`, … would build a graph that prints exponentially large or nests past `maxDepth`.
   */
  defineAlias(name: string, pos: number, read: () => Attr): void {
    if (this.aliases.has(name)) this.fail(`redefinition of alias '${name}'; give it another name`, pos);
    const max = this.limits.maxAliases;
    if (this.aliases.size >= max) {
      this.fail(`more than ${max} aliases; inline some or raise the parse option maxAliases`, pos);
    }
    this.aliases.set(name, null);
    this.skipWs();
    const start = this.pos;
    const inlined = this.inlinedChars;
    this.peakDepth = 0;
    const value = read();
    const chars = this.pos - start + this.inlinedChars - inlined;
    this.aliases.set(name, { value, chars, depth: this.peakDepth });
  }

  /** The value of alias `name` used at `pos`, counted as if inlined there against maxDepth and maxInputBytes. */
  useAlias(name: string, pos: number): Attr {
    const alias = this.aliases.get(name);
    if (alias === undefined) {
      this.fail(
        `undefined alias '${name}'; define it at the top level before its first use ('${name} = …')`,
        pos,
      );
    }
    if (alias === null)
      this.fail(`alias '${name}' refers to itself; an alias cannot be used in its own definition`, pos);
    this.nest(alias.depth, pos);
    this.inlinedChars += Math.max(0, alias.chars - name.length);
    const max = this.limits.maxInputBytes;
    if (this.src.length + this.inlinedChars > max) {
      this.fail(
        `inlining alias '${name}' here makes the input larger than ${max} bytes; use it less or raise the parse option maxInputBytes`,
        pos,
      );
    }
    return alias.value;
  }

  locAt(pos: number): SourceLoc {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: pos - this.lineStarts[lo]! + 1 };
  }

  fail(message: string, pos = this.pos): never {
    throw new IrError(IrErrorCode.Parse, [{ message, loc: this.locAt(pos) }]);
  }

  /** Fails with `expected <what>, found <the token here>`. */
  expected(what: string, pos = this.pos): never {
    this.pos = pos;
    return this.fail(`expected ${what}, found ${this.describe()}`, pos);
  }

  skipWs(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '/' && s[this.pos + 1] === '/') {
        while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
      } else break;
    }
  }

  atEnd(): boolean {
    this.skipWs();
    return this.pos >= this.src.length;
  }

  peek(): string {
    this.skipWs();
    return this.src[this.pos] ?? '';
  }

  lookingAt(text: string): boolean {
    this.skipWs();
    return this.src.startsWith(text, this.pos);
  }

  eat(text: string): boolean {
    if (!this.lookingAt(text)) return false;
    this.pos += text.length;
    return true;
  }

  expect(text: string): void {
    if (!this.eat(text)) this.expected(`'${text}'`);
  }

  /** A short description of the token at the cursor, for "found …" in messages. */
  describe(): string {
    this.skipWs();
    const s = this.src;
    if (this.pos >= s.length) return 'end of input';
    const c = s[this.pos]!;
    if (c === '"') {
      const end = s.indexOf('"', this.pos + 1);
      const text = s.slice(this.pos, end < 0 ? s.length : end + 1);
      return `string ${text.length > 30 ? `${text.slice(0, 30)}…"` : text}`;
    }
    const m = /^(%[\w$.-]+(#\d+)?|\^[\w$.-]+|![\w$.-]+|-?\d[\w.+-]*|[A-Za-z_][\w$.-]*|->)/.exec(
      s.slice(this.pos),
    );
    return `'${m ? m[0] : c}'`;
  }

  /** Reads an identifier (`[A-Za-z_][\w$.-]*`), or returns undefined without moving. */
  ident(): string | undefined {
    this.skipWs();
    const s = this.src;
    if (!IDENT_START.test(s[this.pos] ?? '')) return undefined;
    const start = this.pos;
    while (this.pos < s.length && IDENT_CHAR.test(s[this.pos]!)) this.pos++;
    return s.slice(start, this.pos);
  }

  /** Reads a run of characters matching `re` (anchored at the cursor), without skipping spaces first. */
  rawMatch(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.src);
    if (!m || m.index !== this.pos) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  /** Reads a quoted string with MLIR escapes (`\\`, `\"`, `\n`, `\t`, `\XX` bytes); returns its bytes. */
  stringBytes(): number[] {
    this.skipWs();
    const start = this.pos;
    if (this.src[this.pos] !== '"') this.expected('a string');
    this.pos++;
    const bytes: number[] = [];
    const s = this.src;
    const max = this.limits.maxStringBytes;
    for (;;) {
      if (bytes.length > max) {
        this.fail(
          `string literal is longer than ${max} bytes; shorten it or raise the parse option maxStringBytes`,
          start,
        );
      }
      const c = s[this.pos];
      if (c === undefined || c === '\n') this.fail("unterminated string; add the closing '\"'", start);
      this.pos++;
      if (c === '"') return bytes;
      if (c !== '\\') {
        const cp = c.codePointAt(0)!;
        if (cp < 0x80) bytes.push(cp);
        else {
          for (const b of encodeChar(s, this.pos - 1)) bytes.push(b);
          if (cp >= 0xd800 && cp < 0xdc00) this.pos++;
        }
        continue;
      }
      this.escape(bytes);
    }
  }

  private escape(bytes: number[]): void {
    const s = this.src;
    const e = s[this.pos];
    const simple: Record<string, number> = { '\\': 0x5c, '"': 0x22, n: 0x0a, t: 0x09 };
    if (e !== undefined && simple[e] !== undefined) {
      bytes.push(simple[e]);
      this.pos++;
      return;
    }
    const hex = s.slice(this.pos, this.pos + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(hex))
      this.fail(`expected a string escape (\\\\, \\", \\n, \\t or \\XX), found '\\${e ?? ''}'`, this.pos - 1);
    bytes.push(Number.parseInt(hex, 16));
    this.pos += 2;
  }
}

function encodeChar(s: string, i: number): number[] {
  const c = s.codePointAt(i)!;
  if (c < 0x800) return [0xc0 | (c >> 6), 0x80 | (c & 63)];
  if (c < 0x10000) return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)];
  return [0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)];
}
