import type { Attr, Attrs } from './attrs.js';
import type { SourceLoc } from './errors.js';
import { FLOAT_TYPE } from './floats.js';
import type { Cursor } from './lexer.js';
import { parseElements } from './parse-elements.js';
import { finiteElement, INT_TYPE, NUMBER, parseNumber } from './parse-numbers.js';
import { parseType } from './parse-types.js';
import { SCALAR_TYPES } from './types.js';
import { utf8Decode } from './utf8.js';

/** MLIR's suffix-id, what follows `#` or `!` in an alias name. */
const ALIAS_NAME = /[\w$.-]+/y;

function parseDense(c: Cursor, start: number): Attr {
  c.expect('<');
  const epos = c.pos;
  const elem = c.ident();
  if (!elem || !(INT_TYPE.test(elem) || FLOAT_TYPE.test(elem))) return c.expected('an element type', epos);
  const values: number[] = [];
  if (c.eat(':')) {
    do {
      c.checkItems(values.length, start, 'dense array');
      c.skipWs();
      const pos = c.pos;
      const lit = c.rawMatch(NUMBER);
      if (lit === undefined) return c.expected('a number');
      values.push(finiteElement(c, lit, elem, pos, 'dense array'));
    } while (c.eat(','));
  }
  c.expect('>');
  return { kind: 'dense', elem, values };
}

export function parseAttr(c: Cursor): Attr {
  const ch = c.peek();
  if (ch === '"') return { kind: 'str', value: utf8Decode(c.stringBytes()) };
  const start = c.pos;
  if (ch === '[') {
    c.enter(start);
    c.expect('[');
    const items: Attr[] = [];
    if (!c.eat(']')) {
      do {
        c.checkItems(items.length, start, 'attribute array');
        items.push(parseAttr(c));
      } while (c.eat(','));
      c.expect(']');
    }
    c.leave();
    return { kind: 'array', items };
  }
  if (ch === '{') {
    c.enter(start);
    const entries = parseAttrDict(c);
    c.leave();
    return { kind: 'dict', entries };
  }
  if (ch === '-' || /\d/.test(ch)) return parseNumber(c);
  if (ch === '#') {
    const name = aliasName(c);
    if (name.includes('.')) {
      c.fail(`dialect attributes such as '${name}' are not supported; use a builtin attribute`, start);
    }
    return c.useAlias(name, start);
  }
  const word = c.ident();
  if (word === 'true' || word === 'false') return { kind: 'bool', value: word === 'true' };
  if (word === 'unit') return { kind: 'unit' };
  if (word === 'array' && c.src[c.pos] === '<') return parseDense(c, start);
  if (word === 'dense' && c.src[c.pos] === '<') return parseElements(c, start);
  c.pos = start;
  const typeWord = word === 'tensor' || word === 'vector' || SCALAR_TYPES.has(word ?? '');
  if (ch === '!' || typeWord) return { kind: 'type', type: parseType(c) };
  return c.expected('an attribute value (string, number, [..], {..}, array<..>, dense<..>, type or #alias)');
}

/**
 * `{key = value, flag, "quoted key" = value}` → entries; a key without value is a unit attribute.
 * `locs`, when given, gets where each key starts, so a check on one attribute can point at it.
 */
export function parseAttrDict(c: Cursor, locs?: Record<string, SourceLoc>): Attrs {
  c.skipWs();
  const start = c.pos;
  c.expect('{');
  // A null prototype keeps keys such as "__proto__" as plain entries.
  const entries: Record<string, Attr> = Object.create(null);
  if (c.eat('}')) return entries;
  let count = 0;
  do {
    c.checkItems(count++, start, 'attribute dictionary');
    c.skipWs();
    const kpos = c.pos;
    const key = c.peek() === '"' ? utf8Decode(c.stringBytes()) : c.ident();
    if (key === undefined) return c.expected('an attribute name', kpos);
    if (Object.hasOwn(entries, key)) c.fail(`duplicate attribute '${key}'`, kpos);
    if (locs) locs[key] = c.locAt(kpos);
    entries[key] = c.eat('=') ? parseAttr(c) : { kind: 'unit' };
  } while (c.eat(','));
  c.expect('}');
  return entries;
}

/** Reads `#name` or `!name` at the cursor and returns it, sigil included. */
function aliasName(c: Cursor): string {
  c.skipWs();
  const start = c.pos;
  const sigil = c.src[c.pos++];
  const name = c.rawMatch(ALIAS_NAME);
  if (name === undefined) return c.expected(`an alias name such as '${sigil}map'`, start);
  return `${sigil}${name}`;
}

/**
 * Reads a top-level alias definition, `#name = attribute` or `!name = type`. Its uses are replaced by
 * the value as they are read, so the graph and its printed form hold no aliases.
 */
export function parseAliasDef(c: Cursor): void {
  c.skipWs();
  const start = c.pos;
  const name = aliasName(c);
  if (name.includes('.')) {
    c.fail(
      `alias names with a '.' are reserved for dialect ${name[0] === '#' ? 'attributes' : 'types'}; rename '${name}'`,
      start,
    );
  }
  c.expect('=');
  c.defineAlias(name, start, () => (name[0] === '#' ? parseAttr(c) : { kind: 'type', type: parseType(c) }));
}
