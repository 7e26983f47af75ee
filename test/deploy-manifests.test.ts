// The files in deploy/ as the tools that read them check them: systemd units with `systemd-analyze
// verify` (Debian's systemd, installed by deploy/setup.sh), nats-server configs with `nats-server -t`
// beside the accounts block `stitch cluster init --auth` writes, Kubernetes manifests against the
// Kubernetes JSON schemas bundled in the npm package kubernetes-models (no network). Every flag the
// units and manifests pass to `stitch` is one the CLI has, and the node and coordinator containers'
// command lines run (on loopback, with the Secrets their headers make) against a secured server.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startEmbeddedNats } from '@stitch/runtime';
import {
  containerProcess,
  findKind as find,
  type K8sObject,
  manifests,
  podSpec,
} from './fixtures/deploy/k8s.js';
import { DEPLOY, parseEnvFile, unitCommand } from './fixtures/deploy/units.js';
import { ROOT } from './fixtures/packing.js';
import { alive } from './fixtures/pids.js';

const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const work = mkdtempSync(join(tmpdir(), 'stitch-deploy-manifests-'));
after(() => rmSync(work, { recursive: true, force: true }));

const UNITS = readdirSync(join(DEPLOY, 'systemd')).filter((f) => f.endsWith('.service'));
const GUARD_DROP_IN = 'stitch-nats.service.d/partition-guard.conf';
/** A template is verified as one of its instances. */
const instanceOf = (unit: string) => unit.replace('@.service', '@example.service');

function verify(dir: string, unit: string) {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, instanceOf(unit))], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.error)
    throw new Error(
      `systemd-analyze is missing (${r.error.message}): bash deploy/setup.sh installs it (apt-get install systemd)`,
    );
  return r;
}

describe('systemd units', () => {
  const dir = mkdtempSync(join(work, 'units-'));
  for (const u of UNITS) copyFileSync(join(DEPLOY, 'systemd', u), join(dir, u));

  test('the shipped units: a nats-server, a node template and a coordinator template', () => {
    assert.deepEqual(UNITS.sort(), [
      'stitch-coordinator@.service',
      'stitch-nats.service',
      'stitch-node@.service',
    ]);
  });

  for (const unit of UNITS)
    test(`systemd-analyze verify ${unit}: no error, no warning`, () => {
      const r = verify(dir, unit);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
    });

  test('the partition guard drop-in of stitch-nats.service: verified with the unit, and read by the check', () => {
    const withDropIn = mkdtempSync(join(work, 'drop-in-'));
    copyFileSync(join(DEPLOY, 'systemd/stitch-nats.service'), join(withDropIn, 'stitch-nats.service'));
    mkdirSync(join(withDropIn, 'stitch-nats.service.d'));
    const dropIn = readFileSync(join(DEPLOY, 'systemd', GUARD_DROP_IN), 'utf8');
    writeFileSync(join(withDropIn, GUARD_DROP_IN), dropIn);
    const r = verify(withDropIn, 'stitch-nats.service');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    writeFileSync(
      join(withDropIn, GUARD_DROP_IN),
      dropIn.replace('/usr/bin/node ', '/usr/bin/no-such-node '),
    );
    assert.match(verify(withDropIn, 'stitch-nats.service').stderr, /no-such-node/);
  });

  test('systemd-analyze verify fails a unit whose program does not exist (the check can fail)', () => {
    const broken = mkdtempSync(join(work, 'broken-'));
    const text = readFileSync(join(dir, 'stitch-node@.service'), 'utf8');
    writeFileSync(
      join(broken, 'stitch-node@.service'),
      text.replace('/usr/bin/node ', '/usr/bin/no-such-node '),
    );
    const r = verify(broken, 'stitch-node@.service');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no-such-node/);
  });
});

describe('nats-server configs', () => {
  const env = parseEnvFile(readFileSync(join(DEPLOY, 'systemd/env.example'), 'utf8'));

  for (const conf of ['single.conf', 'cluster.conf'])
    test(`nats-server -t accepts ${conf} with the accounts block of cluster init --auth`, () => {
      const dir = mkdtempSync(join(work, 'nats-'));
      const init = spawnSync(
        process.execPath,
        [
          BIN,
          'cluster',
          'init',
          '--auth',
          dir,
          '--name',
          env.STITCH_CLUSTER!,
          '--nodes',
          'h1,h2',
          '--route-hosts',
          '10.0.0.1,10.0.0.2,10.0.0.3',
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(init.status, 0, init.stderr);
      copyFileSync(join(DEPLOY, 'nats', conf), join(dir, 'nats.conf'));
      // What stitch-nats.service gives the server: /etc/stitch/env, systemd's STATE_DIRECTORY and its
      // working directory.
      const r = spawnSync('nats-server', ['-t', '-c', join(dir, 'nats.conf')], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, ...env, STITCH_NATS_NAME: 'h1', STATE_DIRECTORY: join(dir, 'state') },
      });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /configuration file .* is valid/);
    });

  test('nats-server -t refuses cluster.conf without its accounts block (the check can fail)', () => {
    const dir = mkdtempSync(join(work, 'nats-'));
    copyFileSync(join(DEPLOY, 'nats/cluster.conf'), join(dir, 'nats.conf'));
    const r = spawnSync('nats-server', ['-t', '-c', join(dir, 'nats.conf')], {
      encoding: 'utf8',
      env: { ...process.env, ...env, STITCH_NATS_NAME: 'h1', STATE_DIRECTORY: dir },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /auth\.conf/);
  });
});

/** Validates against the schema of its apiVersion and kind (kubernetes-models, from the Kubernetes OpenAPI). */
async function validate(o: K8sObject): Promise<void> {
  const models = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<
    string,
    new (
      data: unknown,
    ) => { validate(): void }
  >;
  const Model = models[o.kind];
  assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

const flagsOf = new Map<string, Set<string>>();

/** The long flags `stitch <command> --help` lists (asked once per command; `cluster guard`: a subcommand). */
function cliFlags(command: string): Set<string> {
  let flags = flagsOf.get(command);
  if (!flags) {
    const help = spawnSync(process.execPath, [BIN, ...command.split(' '), '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(help.status, 0, help.stderr);
    flags = new Set(help.stdout.match(/--[a-z][a-z-]*/g));
    flagsOf.set(command, flags);
  }
  return flags;
}

describe('Kubernetes manifests', () => {
  const files = readdirSync(join(DEPLOY, 'k8s')).filter((f) => f.endsWith('.yaml'));

  for (const file of files)
    test(`${file}: every object is valid against the Kubernetes schema`, async () => {
      const objects = manifests(file);
      assert.ok(objects.length > 0);
      for (const o of objects) await validate(o);
      // Each container mounts volumes its pod has and refers to variables it defines.
      for (const o of objects.filter((x) => x.spec && 'template' in x.spec)) {
        const pod = podSpec(o);
        const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
        const claims = (o.spec!.volumeClaimTemplates as { metadata: { name: string } }[] | undefined) ?? [];
        for (const c of claims) volumes.add(c.metadata.name);
        for (const c of pod.containers) {
          for (const m of c.volumeMounts ?? [])
            assert.ok(volumes.has(m.name), `${o.metadata.name}: mount ${m.name} has no volume`);
          const defined = new Set((c.env ?? []).map((e) => e.name));
          for (const arg of c.args ?? [])
            for (const [, v] of arg.matchAll(/\$\((\w+)\)/g))
              assert.ok(defined.has(v!), `${o.metadata.name}: $(${v}) is not defined in env`);
        }
      }
    });

  test('a manifest that breaks the schema is refused (the check can fail)', async () => {
    const set = find(manifests('nats.yaml'), 'StatefulSet');
    await assert.rejects(validate({ ...set, spec: { ...set.spec, replicas: 'three' } }), /replicas/);
  });

  test('nats: three servers running nats/cluster.conf as shipped, the auth block from a Secret', () => {
    const objects = manifests('nats.yaml');
    assert.equal(
      find(objects, 'ConfigMap').data!['nats.conf'],
      readFileSync(join(DEPLOY, 'nats/cluster.conf'), 'utf8'),
    );
    const set = find(objects, 'StatefulSet');
    assert.equal(set.spec!.replicas, 3);
    const routes = podSpec(set)
      .containers[0]!.env!.find((e) => e.name === 'STITCH_NATS_ROUTES')!
      .value!.slice(1, -1)
      .split(',');
    assert.deepEqual(
      routes,
      [0, 1, 2].map((i) => `nats-route://stitch-nats-${i}.stitch-nats:6222`),
    );
    // Every file cluster.conf names relative to its working directory is mounted there, from a Secret.
    const nats = podSpec(set).containers[0]!;
    assert.equal(nats.workingDir, '/etc/stitch');
    const secrets = new Set(
      (podSpec(set).volumes ?? []).filter((v) => 'secret' in v).map((v) => (v as { name: string }).name),
    );
    const conf = readFileSync(join(DEPLOY, 'nats/cluster.conf'), 'utf8');
    const files = [...conf.matchAll(/_file: "\.\/([\w.-]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(files, ['route.pem', 'route-key.pem', 'route-ca.pem']);
    for (const f of files) {
      const mount = nats.volumeMounts?.find((m) => m.mountPath === `/etc/stitch/${f}`);
      assert.ok(mount && secrets.has(mount.name) && mount.subPath === f, `${f} is mounted from a Secret`);
    }
  });

  test('nodes and two coordinators run stitch with --actors and credentials, flags the CLI has', () => {
    const node = podSpec(find(manifests('stitch-node.yaml'), 'DaemonSet')).containers[0]!.args!;
    const coordinators = find(manifests('stitch-coordinator.yaml'), 'StatefulSet');
    assert.equal(coordinators.spec!.replicas, 2);
    const coordinator = podSpec(coordinators).containers[0]!.args!;
    assert.equal(node[node.indexOf('--actors') + 1], '/opt/stitch/packages/agents/dist/actors.js');
    assert.match(node[node.indexOf('--nkey') + 1]!, /^\/etc\/stitch\/credentials\/node-\$\(NODE_NAME\)\.nk$/);
    assert.ok(coordinator.includes('--system-nkey'));
    for (const [command, args] of [
      ['node', node],
      ['coordinator', coordinator],
    ] as const) {
      assert.equal(args[0], command);
      const known = cliFlags(command);
      for (const flag of args.filter((a) => a.startsWith('--')))
        assert.ok(known.has(flag), `stitch ${command} has no ${flag}`);
    }
  });

  test('the systemd units pass stitch only flags it has', () => {
    const ctx = { hostname: 'h1', credentialsDir: '/c', cacheRoot: '/cache', paths: {}, instance: 'x' };
    const env = { ...ctx, paths: { '/etc/stitch/env': join(DEPLOY, 'systemd/env.example') } };
    const units: [string, string[]][] = [
      ['stitch-node@.service', []],
      ['stitch-coordinator@.service', []],
      ['stitch-nats.service', [join(DEPLOY, 'systemd', GUARD_DROP_IN)]],
    ];
    for (const [unit, dropIns] of units) {
      const { args } = unitCommand(join(DEPLOY, 'systemd', unit), env, dropIns);
      // `stitch cluster guard … -- nats-server …`: the flags before `--` are stitch's.
      const own = args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
      const command = own[1] === 'cluster' ? `cluster ${own[2]}` : own[1]!;
      const known = cliFlags(command);
      for (const flag of own.filter((a) => a.startsWith('--')))
        assert.ok(known.has(flag), `${unit}: stitch ${command} has no ${flag}`);
    }
    const guard = unitCommand(join(DEPLOY, 'systemd/stitch-nats.service'), env, [
      join(DEPLOY, 'systemd', GUARD_DROP_IN),
    ]);
    assert.deepEqual(guard.args.slice(0, 3), ['/opt/stitch/packages/cli/dist/bin.js', 'cluster', 'guard']);
    assert.match(guard.args[guard.args.indexOf('--peers') + 1]!, /^[\w.-]+:\d+(,[\w.-]+:\d+)+$/);
    assert.deepEqual(guard.args.slice(guard.args.indexOf('--') + 1), [
      '/usr/sbin/nats-server',
      '-c',
      '/etc/stitch/nats.conf',
    ]);
  });

  test('the node and coordinator containers run as written: the node joins, coordinator-0 leads, -1 stands by', {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(work, 'k8s-run-'));
    const auth = join(dir, 'auth');
    const ids = 'stitch-coordinator-0,stitch-coordinator-1';
    const init = spawnSync(
      process.execPath,
      [
        BIN,
        'cluster',
        'init',
        '--auth',
        auth,
        '--name',
        'prod',
        '--nodes',
        'k8s-node-1',
        '--coordinator-id',
        ids,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(init.status, 0, init.stderr);
    // The Secrets' keys as the headers' `kubectl create secret` commands name them.
    const credentials = join(dir, 'credentials');
    mkdirSync(credentials);
    copyFileSync(join(auth, 'node-k8s-node-1.nk'), join(credentials, 'node-k8s-node-1.nk'));
    const header = readFileSync(join(DEPLOY, 'k8s/stitch-coordinator.yaml'), 'utf8');
    const keys = [...header.matchAll(/--from-file=([\w.-]+)=auth\/([\w.-]+)/g)];
    assert.equal(keys.length, 3, 'two coordinator seeds and system.nk');
    for (const [, key, file] of keys) copyFileSync(join(auth, file!), join(credentials, key!));

    const nats = await startEmbeddedNats({ config: readFileSync(join(auth, 'auth.conf'), 'utf8') });
    const children: ChildProcess[] = [];
    try {
      const setUp = spawnSync(
        process.execPath,
        [BIN, 'cluster', 'init', '--nats', nats.url, '--name', 'prod', '--nkey', join(auth, 'admin.nk')],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(setUp.status, 0, setUp.stderr);
      const start = (o: K8sObject, fields: Record<string, string>, ready: RegExp) => {
        const { argv, cwd, env } = containerProcess(
          podSpec(o).containers[0]!,
          fields,
          { '/opt/stitch': ROOT, '/etc/stitch/credentials': credentials, '/cache': join(dir, 'cache') },
          // The in-cluster addresses of the three servers → the test's server.
          (a) => (a.startsWith('nats://stitch-nats-0') ? nats.url : a),
        );
        assert.equal(argv[0], 'node');
        const child = spawn(process.execPath, argv.slice(1), {
          cwd,
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let out = '';
        return new Promise<string>((resolve, reject) => {
          const read = (b: Buffer) => {
            out += b.toString();
            if (ready.test(out)) resolve(out);
          };
          child.stdout!.on('data', read);
          child.stderr!.on('data', read);
          child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}:\n${out}`)));
        });
      };
      const daemonSet = find(manifests('stitch-node.yaml'), 'DaemonSet');
      await start(daemonSet, { 'spec.nodeName': 'k8s-node-1' }, /node k8s-node-1 joined cluster "prod"/);
      const coordinators = find(manifests('stitch-coordinator.yaml'), 'StatefulSet');
      const pod = (i: number) => ({ 'metadata.name': `stitch-coordinator-${i}` });
      await start(coordinators, pod(0), /leading the cluster's coordinators/);
      const standby = await start(
        coordinators,
        pod(1),
        /coordinator stitch-coordinator\/stitch-coordinator-1 running/,
      );
      assert.doesNotMatch(standby, /leading/);
    } finally {
      for (const c of children) c.kill('SIGKILL');
      await Promise.all(
        children.map(
          (c) => new Promise((r) => ((c.exitCode ?? c.signalCode) !== null ? r(0) : c.once('exit', r))),
        ),
      );
      await nats.stop();
    }
    assert.deepEqual(children.map((c) => c.pid!).filter(alive), []);
  });
});
