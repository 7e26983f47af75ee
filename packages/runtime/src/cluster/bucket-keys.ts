import type { JetStreamManager } from '@nats-io/jetstream';

/**
 * Keys currently stored in a KV bucket, read from its stream's per-subject counts. This is one
 * request with a timeout. nats.js `kv.keys()` instead opens a consumer and waits for the pending
 * count it saw at creation, or for a heartbeat; in a bucket whose TTL expires entries while the
 * listing runs (the nodes bucket does so constantly) that wait was seen to hang a caller.
 */
export async function bucketKeys(jsm: JetStreamManager, bucket: string, under?: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, {
    subjects_filter: under === undefined ? `${prefix}>` : `${prefix}${under}.>`,
  });
  return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
}
