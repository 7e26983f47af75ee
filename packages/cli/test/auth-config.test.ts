import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  accountsBlock,
  clientPermissions,
  coordinatorPermissions,
  nodePermissions,
  rolePermissions,
} from '../src/auth-config.js';

const KEY = `U${'A'.repeat(55)}`;

test('a node writes only its own capability record, and takes only its own control and activation subjects', () => {
  const p = nodePermissions('c1', 'gpu1');
  assert.ok(p.publish.allow.includes('$KV.stitch_c1_nodes.gpu1'));
  assert.ok(
    !p.publish.allow.some((s) => s.startsWith('$KV.stitch_c1_nodes.') && s !== '$KV.stitch_c1_nodes.gpu1'),
  );
  assert.ok(p.publish.allow.includes('$KV.stitch_c1_directory.>'));
  // Questions to other nodes, never commands: a node cannot stop another node's actors.
  assert.ok(p.publish.allow.includes('stitch.c1.node.*.query'));
  assert.ok(!p.publish.allow.some((s) => s.endsWith('.control')));
  assert.ok(p.subscribe.allow.includes('stitch.c1.node.gpu1.control'));
  assert.ok(p.subscribe.allow.includes('stitch.c1.node.gpu1.query'));
  assert.ok(p.subscribe.allow.includes('stitch.c1.activate.gpu1'));
  // Its durable actors pull again when their consumer's server stops: the mailbox's advisories only.
  assert.ok(p.subscribe.allow.includes('$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.stitch_c1_mailbox.*'));
  assert.ok(!p.subscribe.allow.some((s) => s.startsWith('$JS.') && !s.includes('stitch_c1_mailbox')));
  // Its durable consumers pull with inboxes that a migration's target may take over; no one publishes there.
  assert.ok(p.subscribe.allow.includes('stitch.c1.pull.>'));
  assert.ok(!p.publish.allow.some((s) => s.includes('.pull.')));
  assert.ok(!p.subscribe.allow.some((s) => s.includes('node.*') || s.includes('activate.*')));
  assert.ok(!p.publish.allow.some((s) => s.includes('STREAM.CREATE')));
});

test('a client may ask, activate and read the directory and nodes buckets, and nothing else', () => {
  const p = clientPermissions('c1');
  for (const s of ['stitch.c1.actor.>', 'stitch.c1.durable.>', 'stitch.c1.activate.*', '_INBOX.>'])
    assert.ok(p.publish.allow.includes(s), s);
  assert.ok(!p.publish.allow.some((s) => s.startsWith('$KV.')), 'no KV writes');
  assert.ok(!p.publish.allow.some((s) => s.includes('.node.')), 'no node control');
  assert.ok(!p.publish.allow.some((s) => s.includes('STREAM.CREATE') || s.includes('membership')));
  assert.ok(!p.publish.allow.some((s) => s.includes('KV_stitch_c1_state') && !s.includes('STREAM.INFO')));
  // Reminders are read (`stitch reminders`), not written: a client sets one through an actor.
  assert.ok(p.publish.allow.includes('$JS.API.DIRECT.GET.KV_stitch_c1_reminders.>'));
  assert.deepEqual(p.subscribe.allow, ['_INBOX.>']);
});

test('a node reads and writes the reminders bucket: it fires its share and its actors set their own', () => {
  const p = nodePermissions('c1', 'n1');
  assert.ok(p.publish.allow.includes('$KV.stitch_c1_reminders.>'));
  assert.ok(p.publish.allow.includes('$JS.API.CONSUMER.CREATE.KV_stitch_c1_reminders.>'), 'it watches them');
});

test('the coordinator is a node coordinator-<id> that also keeps the deployments bucket', () => {
  const p = coordinatorPermissions('c1', 'main');
  assert.ok(p.publish.allow.includes('$KV.stitch_c1_nodes.coordinator-main'));
  assert.ok(p.publish.allow.includes('$KV.stitch_c1_deployments.>'));
  assert.ok(p.publish.allow.includes('$JS.API.STREAM.CREATE.KV_stitch_c1_deployments'));
  assert.ok(p.publish.allow.includes('stitch.c1.node.*.control'), 'it stops the operators it moves');
  assert.equal(rolePermissions('c1', 'admin'), undefined);
});

test('names that are not subject tokens are refused', () => {
  assert.throws(() => nodePermissions('c1', 'a.b'), /node id/);
  assert.throws(() => clientPermissions('c>'), /cluster name/);
  assert.throws(() => rolePermissions('c1', 'node'), /node id/);
});

test('the accounts block puts the stitch users in STITCH (JetStream on) and the system user in SYS', () => {
  const SYS_KEY = `U${'B'.repeat(55)}`;
  const text = accountsBlock(
    [
      { name: 'admin', publicKey: KEY },
      { name: 'client', publicKey: KEY, permissions: clientPermissions('c1') },
    ],
    [{ name: 'system', publicKey: SYS_KEY }],
    'header',
  );
  assert.match(text, /^# header\naccounts \{\n {2}STITCH: \{\n {4}jetstream: enabled\n {4}users = \[/);
  assert.match(text, new RegExp(`\\{ nkey: "${KEY}" \\}`));
  assert.match(text, /publish: \{ allow: \["stitch\.c1\.actor\.>"/);
  // A user subscribes to its own inboxes only, not every caller's replies.
  assert.ok(text.includes(`subscribe: { allow: ["_INBOX.${KEY}.>"] }`), text);
  assert.ok(!text.includes('"_INBOX.>"] }'), text);
  assert.match(text, new RegExp(`SYS: \\{\\n {4}users = \\[\\n.*\\n {6}\\{ nkey: "${SYS_KEY}" \\}`));
  assert.match(text, /\nsystem_account: SYS\n$/);
  assert.throws(() => accountsBlock([{ name: 'x', publicKey: 'SUABC' }], []), /not a user nkey/);
});
