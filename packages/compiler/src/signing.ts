import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import type { KernelManifest } from './artifact.js';
import { ArtifactUntrusted } from './errors.js';

/** A publisher key pair as PEM text (PKCS#8 private key, SPKI public key) and the public key's id. */
export interface PublisherKey {
  /** Keep secret: whoever holds it can publish kernels that every node trusting `publicKey` runs. */
  privateKey: string;
  /** What fetching nodes list in `trustedKeys`. */
  publicKey: string;
  /** `publisherKeyId(publicKey)`: SHA-256 (hex) of the public key's SPKI DER encoding. */
  keyId: string;
}

/** What `<hash>.sig` in the object store holds (as JSON). */
export interface ManifestSignature {
  v: 1;
  alg: 'ed25519';
  /** Id of the public key that verifies it (`publisherKeyId`); informational, for error messages. */
  keyId: string;
  /** Base64 of the 64-byte ed25519 signature over `canonicalManifestBytes(manifest)`. */
  signature: string;
}

/** Prefixed to the signed bytes so a manifest signature can never be mistaken for another signed message. */
const DOMAIN = 'stitch-kernel-manifest/v1\n';

/** Generates an ed25519 publisher key pair for `publishArtifact({ signingKey })` / `fetchArtifact({ trustedKeys })`. */
export function generatePublisherKey(): PublisherKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: publisherKeyId(publicKey),
  };
}

/** SHA-256 (hex) of a public key's SPKI DER encoding (a private key gives its public key's id). */
export function publisherKeyId(key: string | KeyObject): string {
  const pub = typeof key !== 'string' && key.type === 'public' ? key : createPublicKey(key);
  const der = pub.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The bytes a manifest signature covers: `stitch-kernel-manifest/v1\n` followed by the manifest as
 * JSON with every object's keys sorted (by UTF-16 code units, as `Array.prototype.sort` does) at
 * every depth, array order kept, no whitespace, values serialised as `JSON.stringify` does (so a
 * property whose value is `undefined` is left out). Key order and formatting of the stored
 * `<hash>.json` therefore do not matter; every field of the manifest does.
 */
export function canonicalManifestBytes(manifest: KernelManifest): Uint8Array {
  return new TextEncoder().encode(DOMAIN + JSON.stringify(sortKeys(manifest)));
}

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((k) => [k, sortKeys(record[k])]),
    );
  }
  return value;
}

/** Parses a signing key; throws `ArtifactUntrusted` unless it is an ed25519 private key. */
export function signingKeyObject(key: string | KeyObject): KeyObject {
  let parsed: KeyObject;
  try {
    parsed = typeof key === 'string' ? createPrivateKey(key) : key;
  } catch (cause) {
    throw new ArtifactUntrusted(
      'publishArtifact: options.signingKey is not a PEM private key; pass generatePublisherKey().privateKey',
      { cause },
    );
  }
  if (parsed.type !== 'private' || parsed.asymmetricKeyType !== 'ed25519') {
    throw new ArtifactUntrusted(
      `publishArtifact: options.signingKey must be an ed25519 private key (generatePublisherKey().privateKey), got a ${parsed.asymmetricKeyType ?? 'secret'} ${parsed.type} key`,
    );
  }
  return parsed;
}

/** Parses trusted keys; throws `ArtifactUntrusted` for anything but ed25519 public keys. */
export function trustedKeyObjects(keys: readonly (string | KeyObject)[]): KeyObject[] {
  return keys.map((key, i) => {
    const what = `fetchArtifact: options.trustedKeys[${i}]`;
    if (typeof key === 'string' && key.includes('PRIVATE KEY')) {
      throw new ArtifactUntrusted(
        `${what} is a private key; list the publisher's public key (generatePublisherKey().publicKey) and keep the private key on the publisher`,
      );
    }
    let parsed: KeyObject;
    try {
      parsed = typeof key === 'string' ? createPublicKey(key) : key;
    } catch (cause) {
      throw new ArtifactUntrusted(`${what} is not a PEM public key; pass generatePublisherKey().publicKey`, {
        cause,
      });
    }
    if (parsed.type !== 'public' || parsed.asymmetricKeyType !== 'ed25519') {
      throw new ArtifactUntrusted(
        `${what} must be an ed25519 public key (generatePublisherKey().publicKey), got a ${parsed.asymmetricKeyType ?? 'secret'} ${parsed.type} key`,
      );
    }
    return parsed;
  });
}

/** Signs a manifest's canonical bytes. */
export function signManifest(manifest: KernelManifest, key: KeyObject): ManifestSignature {
  return {
    v: 1,
    alg: 'ed25519',
    keyId: publisherKeyId(key),
    signature: sign(null, canonicalManifestBytes(manifest), key).toString('base64'),
  };
}

const SIGNATURE_BASE64 = /^[A-Za-z0-9+/]{86}==$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks `<hash>.sig` (its bytes, or null when the object store has none) against the trusted keys.
 * Returns the id of the key that verified it; throws `ArtifactUntrusted` otherwise.
 */
export function verifyManifest(
  manifest: KernelManifest,
  signatureBytes: Uint8Array | null,
  trusted: readonly KeyObject[],
): string {
  const hash = manifest.hash;
  const configure =
    "add the publisher's public key (generatePublisherKey().publicKey on the publisher) to fetchArtifact's " +
    'options.trustedKeys, and publish with publishArtifact(store, artifact, { signingKey })';
  if (!signatureBytes) {
    throw new ArtifactUntrusted(
      `artifact ${hash} is unsigned (no ${hash}.sig in the object store); ${configure}. ` +
        'Only where every writer of the object store is trusted, pass { allowUnsigned: true } instead.',
    );
  }
  let envelope: Partial<ManifestSignature>;
  try {
    envelope = JSON.parse(new TextDecoder().decode(signatureBytes)) as Partial<ManifestSignature>;
  } catch (cause) {
    throw new ArtifactUntrusted(`artifact ${hash}: ${hash}.sig is not valid JSON; ${configure}`, { cause });
  }
  if (
    envelope === null ||
    typeof envelope !== 'object' ||
    envelope.alg !== 'ed25519' ||
    typeof envelope.signature !== 'string' ||
    !SIGNATURE_BASE64.test(envelope.signature)
  ) {
    throw new ArtifactUntrusted(
      `artifact ${hash}: ${hash}.sig is not an ed25519 manifest signature; ${configure}`,
    );
  }
  const signature = Buffer.from(envelope.signature, 'base64');
  const data = canonicalManifestBytes(manifest);
  for (const key of trusted) {
    if (verify(null, data, key, signature)) return publisherKeyId(key);
  }
  const claimed = typeof envelope.keyId === 'string' && HEX64.test(envelope.keyId) ? envelope.keyId : null;
  const ids = new Set(trusted.map((k) => publisherKeyId(k)));
  if (claimed && ids.has(claimed)) {
    throw new ArtifactUntrusted(
      `artifact ${hash}: its signature names trusted key ${claimed} but does not verify: the manifest ` +
        'or its signature was altered in the object store; republish it from the publisher',
    );
  }
  throw new ArtifactUntrusted(
    `artifact ${hash} is signed by key ${claimed ?? '(unknown)'}, which is not among the ${trusted.length} ` +
      `options.trustedKeys (ids ${[...ids].join(', ')}); ${configure}`,
  );
}
