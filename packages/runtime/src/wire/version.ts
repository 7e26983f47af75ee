// The wire protocol's version. Every envelope carries the sender's as `<major>.<minor>` in the
// Stitch-Wire header. A minor release adds only what older readers ignore (a new optional header or
// field), so a receiver takes every minor of its own major; a major release changes what a message
// means, so a receiver takes its own major and the one before it (what a rolling upgrade mixes) and
// refuses a newer one with WireVersionUnsupported, which tells the operator to finish the upgrade.
// A message without the header comes from a build older than the header: version 1.0.
// 1.1: Stitch-Seq (the sender's message count, which orders a live migration's hand-off).
// 1.2: Stitch-Prev (the count of the sender's previous message to the same actor: a migration's
//      target runs a message whose predecessor it knows, instead of holding it until the hand-off ends).
import { WireVersionUnsupported } from '../errors.js';

/** The version this build speaks. */
export const WIRE_VERSION = '1.2';

/** What a message without a Stitch-Wire header is taken to be. */
const UNVERSIONED = '1.0';

export interface WireVersion {
  major: number;
  minor: number;
}

/** `<major>.<minor>`, both decimal integers without sign or leading zeros; undefined otherwise. */
export function parseWireVersion(text: string): WireVersion | undefined {
  const m = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/**
 * The version of a received message (its Stitch-Wire header, `undefined` when it has none), checked
 * against the one this build speaks: the same major at any minor, or the major before it.
 * @throws WireVersionUnsupported for a newer major or a malformed version.
 */
export function checkWireVersion(received: string | undefined, speaks: string = WIRE_VERSION): WireVersion {
  const text = received ?? UNVERSIONED;
  const v = parseWireVersion(text);
  const own = parseWireVersion(speaks);
  if (!own) throw new TypeError(`speaks must be <major>.<minor>, found ${JSON.stringify(speaks)}`);
  if (!v || v.major > own.major || v.major < own.major - 1) throw new WireVersionUnsupported(text, speaks);
  return v;
}
