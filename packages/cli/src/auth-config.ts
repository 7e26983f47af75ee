// Per-principal NATS permissions of one stitch cluster, and the `authorization { users }` block that
// grants them to static nkey users. Static nkeys rather than JWT operator mode: a static user list needs
// no resolver or account server to run, and works in the config files of Debian's nats-server 2.9.
// Pure functions: `stitch cluster init --auth` (auth-files.ts) makes the keys and writes the files.
import { InvalidOptions } from '@stitch/runtime';

const TOKEN = /^[A-Za-z0-9_-]{1,120}$/;

export type Role = 'admin' | 'coordinator' | 'node' | 'client';

export interface SubjectPermissions {
  allow: string[];
  deny?: string[];
}

export interface Permissions {
  publish: SubjectPermissions;
  subscribe: SubjectPermissions;
}

/** One user of the server's `authorization { users }`: an nkey public key (`U…`) and what it may do. */
export interface AuthUser {
  /** Written as a comment above the entry (`admin`, `node-gpu1`). */
  name: string;
  publicKey: string;
  /** Absent: everything (the admin). */
  permissions?: Permissions;
}

function check(what: string, value: string): string {
  if (!TOKEN.test(value))
    throw new InvalidOptions(
      `${what} must be 1-120 characters of A-Z a-z 0-9 _ - (got ${JSON.stringify(value)})`,
    );
  return value;
}

/** The JetStream API a reader of KV bucket `bucket` needs: stream info, get (direct or not) and watch. */
function kvRead(bucket: string): string[] {
  return streamRead(`KV_${bucket}`);
}

/** The same for any stream: an object store's `OBJ_<bucket>` is read the same way (info, get, ordered consumer). */
function streamRead(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    // kv.watch: an ordered push consumer (created, re-created after a gap, deleted) with flow control.
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** What every cluster connection does: JetStream's account check and the info of the cluster's streams. */
function clusterOpen(c: string): string[] {
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.stitch_${c}_mailbox`,
    `$JS.API.STREAM.INFO.KV_stitch_${c}_nodes`,
    `$JS.API.STREAM.INFO.KV_stitch_${c}_directory`,
    `$JS.API.STREAM.INFO.KV_stitch_${c}_state`,
    `$JS.API.STREAM.INFO.KV_stitch_${c}_reminders`,
  ];
}

/**
 * A node `nodeId`: takes its own activation, control and query requests and the cluster's actor
 * subjects; asks actors, activates on and asks holder questions of other nodes (never commands); writes only its own capability record
 * in the nodes bucket, and the directory and state buckets; consumes the durable mailbox stream.
 */
export function nodePermissions(cluster: string, nodeId: string): Permissions {
  const c = check('cluster name', cluster);
  const id = check('node id', nodeId);
  const mailbox = `stitch_${c}_mailbox`;
  return {
    publish: {
      allow: [
        `stitch.${c}.actor.>`,
        `stitch.${c}.durable.>`,
        `stitch.${c}.activate.*`,
        // Questions to other nodes (holder checks), not commands: a node cannot stop another's actors.
        `stitch.${c}.node.*.query`,
        // Live migrations: the source hands an actor's state and queued messages to the target.
        `stitch.${c}.node.*.handoff`,
        `stitch.${c}.membership`,
        '_INBOX.>',
        ...clusterOpen(c),
        // Durable actors: one durable pull consumer per actor on the mailbox stream, acked message by message.
        `$JS.API.CONSUMER.CREATE.${mailbox}`,
        `$JS.API.CONSUMER.CREATE.${mailbox}.>`,
        `$JS.API.CONSUMER.DURABLE.CREATE.${mailbox}.>`,
        `$JS.API.CONSUMER.INFO.${mailbox}.>`,
        `$JS.API.CONSUMER.MSG.NEXT.${mailbox}.>`,
        `$JS.ACK.${mailbox}.>`,
        ...kvRead(`stitch_${c}_nodes`),
        ...kvRead(`stitch_${c}_directory`),
        ...kvRead(`stitch_${c}_state`),
        // Chunks of large snapshots that no record names any more are purged, leaving no markers.
        `$JS.API.STREAM.PURGE.KV_stitch_${c}_state`,
        // The agents' memory (memory.load/store operators), written through the node's connection.
        ...kvRead(`stitch_${c}_memory`),
        `$KV.stitch_${c}_memory.>`,
        // KV caches prefill hands to decode (written, read once and purged by LLM operators).
        ...kvRead(`stitch_${c}_kvcache`),
        `$KV.stitch_${c}_kvcache.>`,
        // What memory.store operators stored per request (a record of recent requests).
        ...kvRead(`stitch_${c}_answers`),
        `$KV.stitch_${c}_answers.>`,
        // Published kernels: read only (the admin publishes; see `stitch node --kernel-signing-key`).
        ...streamRead(`OBJ_stitch_${c}_kernels`),
        `$KV.stitch_${c}_nodes.${id}`,
        `$KV.stitch_${c}_directory.>`,
        `$KV.stitch_${c}_state.>`,
        // Reminders: actors set their own, and every node watches them all and fires its share.
        ...kvRead(`stitch_${c}_reminders`),
        `$KV.stitch_${c}_reminders.>`,
      ],
    },
    subscribe: {
      allow: [
        `stitch.${c}.actor.>`,
        `stitch.${c}.durable.>`,
        `stitch.${c}.activate.${id}`,
        `stitch.${c}.node.${id}.control`,
        `stitch.${c}.node.${id}.query`,
        `stitch.${c}.node.${id}.handoff`,
        `stitch.${c}.membership`,
        // A durable actor pulls again at once when its consumer gets a new leader.
        `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${mailbox}.*`,
        // Durable consumers pull with inboxes here (only the server publishes to them): a migration's
        // target takes over the source's pulls, which a pull's requester cannot cancel.
        `stitch.${c}.pull.>`,
        '_INBOX.>',
      ],
    },
  };
}

/**
 * The coordinator: a node (`coordinator-<id>`, as `stitch coordinator --id` names its node) that also
 * keeps the deployments bucket `stitch_<c>_deployments` (and creates it when missing).
 */
export function coordinatorPermissions(cluster: string, coordinatorId = 'main'): Permissions {
  const c = check('cluster name', cluster);
  const node = nodePermissions(c, `coordinator-${check('coordinator id', coordinatorId)}`);
  const bucket = `stitch_${c}_deployments`;
  return {
    publish: {
      allow: [
        ...node.publish.allow,
        // Commands to nodes: the coordinator stops and migrates the operators it moves.
        `stitch.${c}.node.*.control`,
        `$JS.API.STREAM.CREATE.KV_${bucket}`,
        ...kvRead(bucket),
        `$KV.${bucket}.>`,
      ],
    },
    subscribe: node.subscribe,
  };
}

/**
 * A client: asks and tells actors (fast and durable), activates them through a node's activation
 * subject, and reads the directory, nodes, deployments and reminders buckets (what `stitch serve`,
 * `stitch dashboard` and `stitch reminders` list). No node control, no KV writes, no stream create.
 */
export function clientPermissions(cluster: string): Permissions {
  const c = check('cluster name', cluster);
  return {
    publish: {
      allow: [
        `stitch.${c}.actor.>`,
        `stitch.${c}.durable.>`,
        `stitch.${c}.activate.*`,
        '_INBOX.>',
        ...clusterOpen(c),
        ...kvRead(`stitch_${c}_directory`),
        ...kvRead(`stitch_${c}_nodes`),
        ...kvRead(`stitch_${c}_deployments`),
        // `stitch reminders` lists an actor's; setting one goes through an actor (a node's connection).
        ...kvRead(`stitch_${c}_reminders`),
      ],
    },
    subscribe: { allow: ['_INBOX.>'] },
  };
}

/** Permissions of a role; `undefined` for the admin (everything). `id`: the node id, or the coordinator id. */
export function rolePermissions(cluster: string, role: Role, id?: string): Permissions | undefined {
  switch (role) {
    case 'admin':
      check('cluster name', cluster);
      return undefined;
    case 'coordinator':
      return coordinatorPermissions(cluster, id);
    case 'node':
      if (id === undefined) throw new InvalidOptions('a node principal needs its node id');
      return nodePermissions(cluster, id);
    case 'client':
      return clientPermissions(cluster);
  }
}

const list = (subjects: string[]) => `[${subjects.map((s) => JSON.stringify(s)).join(', ')}]`;

function side(p: SubjectPermissions): string {
  return `{ allow: ${list(p.allow)}${p.deny?.length ? `, deny: ${list(p.deny)}` : ''} }`;
}

/**
 * A role's `_INBOX.>` subscription narrowed to the user's own inboxes, `_INBOX.<public key>.>`: the
 * prefix connectCluster takes with an nkey seed, so no principal can read another's replies.
 */
function ownInboxes(p: SubjectPermissions, publicKey: string): SubjectPermissions {
  return { ...p, allow: p.allow.map((s) => (s === '_INBOX.>' ? `_INBOX.${publicKey}.>` : s)) };
}

const checkKey = (u: AuthUser) => {
  if (!/^U[A-Z2-7]{55}$/.test(u.publicKey))
    throw new InvalidOptions(`${u.name}: ${JSON.stringify(u.publicKey)} is not a user nkey public key`);
};

/**
 * The `accounts` block of nats-server's config (include it from the main file): the stitch principals
 * in account STITCH (JetStream on), and the `system` users in account SYS, the server's system account,
 * whose connect/disconnect advisories tell the coordinator at once that a node's connection closed.
 * (Users of the default global account get no advisories, hence the named account.)
 */
export function accountsBlock(users: AuthUser[], systemUsers: AuthUser[], header?: string): string {
  const lines: string[] = [];
  if (header) for (const l of header.split('\n')) lines.push(`# ${l}`);
  lines.push('accounts {', '  STITCH: {', '    jetstream: enabled', '    users = [');
  for (const u of users) {
    checkKey(u);
    lines.push(`      # ${u.name}`);
    if (!u.permissions) {
      lines.push(`      { nkey: ${JSON.stringify(u.publicKey)} }`);
      continue;
    }
    lines.push(
      `      { nkey: ${JSON.stringify(u.publicKey)}, permissions: {`,
      `          publish: ${side(u.permissions.publish)}`,
      `          subscribe: ${side(ownInboxes(u.permissions.subscribe, u.publicKey))}`,
      '      } }',
    );
  }
  lines.push('    ]', '  }', '  SYS: {', '    users = [');
  for (const u of systemUsers) {
    checkKey(u);
    lines.push(`      # ${u.name}`, `      { nkey: ${JSON.stringify(u.publicKey)} }`);
  }
  lines.push('    ]', '  }', '}', 'system_account: SYS', '');
  return lines.join('\n');
}
