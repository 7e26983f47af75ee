import { type Deployment, isDeploymentRecord } from '@stitch/agents';
import type { Cluster } from '@stitch/runtime';

/** The coordinator's KV bucket (@stitch/agents names it so); keys starting with `_` are its leader lease. */
export const deploymentsBucket = (cluster: string) => `stitch_${cluster}_deployments`;

/** Deployments read at most; the coordinator keeps 64 by default. */
export const MAX_LISTED_DEPLOYMENTS = 256;

export interface Listed {
  deployment: Deployment;
  /** When the record was last written (ms since the epoch). */
  updatedAt: number;
}

/** A record anyone on the bus could have written: the fields the runner and the pages read, typed. */
export function isDeployment(v: unknown): v is Deployment {
  const name = (v as { name?: unknown } | null)?.name;
  // @stitch/agents' check of what a caller routes by (ops, their replicas), and the SLA the pages show.
  return typeof name === 'string' && isDeploymentRecord(v, name) && typeof v.slaMs === 'number';
}

/**
 * The cluster's deployments as the coordinator records them in KV, re-read at most every `ttlMs`:
 * operators are addressed by actor id, which a migration keeps, so a record a second old routes fine.
 */
export class Deployments {
  readonly #cluster: Cluster;
  readonly #ttlMs: number;
  #cache: { at: number; list: Listed[] } | undefined;
  #reading: Promise<Listed[]> | undefined;

  constructor(cluster: Cluster, ttlMs = 1000) {
    this.#cluster = cluster;
    this.#ttlMs = ttlMs;
  }

  async list(): Promise<Listed[]> {
    if (this.#cache && Date.now() - this.#cache.at < this.#ttlMs) return this.#cache.list;
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async get(name: string): Promise<Listed | undefined> {
    return (await this.list()).find((l) => l.deployment.name === name);
  }

  async #read(): Promise<Listed[]> {
    const bucket = deploymentsBucket(this.#cluster.name);
    let kv: Awaited<ReturnType<Cluster['kv']>>;
    let keys: string[];
    try {
      kv = await this.#cluster.kv(bucket);
      keys = (await this.#cluster.kvKeys(bucket)).filter((k) => !k.startsWith('_'));
    } catch {
      // No coordinator has made the bucket yet: no deployments.
      keys = [];
    }
    keys = keys.sort().slice(0, MAX_LISTED_DEPLOYMENTS);
    const list: Listed[] = [];
    for (const key of keys) {
      const e = await kv!.get(key).catch(() => null);
      if (e?.operation !== 'PUT') continue;
      try {
        const v: unknown = e.json();
        if (isDeployment(v)) list.push({ deployment: v, updatedAt: e.created.getTime() });
      } catch {
        // Not JSON: not a deployment the coordinator wrote.
      }
    }
    this.#cache = { at: Date.now(), list };
    return list;
  }
}
