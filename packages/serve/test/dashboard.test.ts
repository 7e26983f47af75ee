// The live dashboard in headless Chromium (Debian's chromium, driven by playwright-core) against a
// real cluster: the page shows the nodes, the deployed graph coloured by the coordinator's placement
// and the $/hour of the placed devices; a node leaves, its operators migrate, and the page follows.
// Screenshots before and after go to a temp dir. It runs the built package (build first): the page's
// script is the compiled dashboard/client.js.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Deployment, GraphRunner, type RequestCounts, reportRequests } from '@stitch/agents';
import { connectCluster, type EmbeddedNats, startEmbeddedNats } from '@stitch/runtime';
import { type Browser, chromium, type Page } from 'playwright-core';
import { waitUntil } from '../../../test/fixtures/wait.js';
import { type Dashboard, type DashboardState, startDashboard } from '../dist/index.js';
import { SAMPLE, startCluster, type TestCluster } from './fixtures/cluster.js';

const CHROMIUM = [process.env.STITCH_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => p !== undefined && existsSync(p),
);
const MISSING =
  'chromium is not installed: run `apt-get install -y chromium` (deploy/setup.sh installs it as root), or set STITCH_CHROMIUM';
// Under CI a missing browser is a failure, not a skip.
const skip = CHROMIUM === undefined && process.env.CI !== 'true' ? MISSING : false;

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
/** Requests run before the page opens: every operator's mailbox has processed at least these. */
const REQUESTS = 3;

// The callbacks of page.evaluate run in the page; the few DOM shapes they use (tests have no DOM lib).
interface El {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  querySelector(selector: string): { getAttribute(name: string): string | null } | null;
}
declare const document: {
  querySelectorAll(selector: string): ArrayLike<El>;
  getElementById(id: string): El | null;
};

/** What the page shows: each op's node, the nodes' cards, the $/hour, the migrations listed. */
function pageView(page: Page) {
  return page.evaluate(() => ({
    ops: Object.fromEntries(
      Array.from(document.querySelectorAll('g.op')).map((g) => [g.dataset.op, g.dataset.node]),
    ),
    processed: Array.from(document.querySelectorAll('g.op')).map((g) => Number(g.dataset.processed)),
    replicas: Object.fromEntries(
      Array.from(document.querySelectorAll('g.op')).map((g) => [g.dataset.op, Number(g.dataset.replicas)]),
    ),
    fills: Object.fromEntries(
      Array.from(document.querySelectorAll('g.op')).map((g) => [
        g.dataset.node,
        g.querySelector('rect')?.getAttribute('fill'),
      ]),
    ),
    nodes: Array.from(document.querySelectorAll('#nodes .node')).map((n) => n.dataset.node),
    draining: Array.from(document.querySelectorAll('#nodes .node.draining')).map((n) => n.dataset.node),
    nodeText: document.getElementById('nodes')?.textContent ?? '',
    usdHour: document.getElementById('usd-hour')?.textContent ?? '',
    sla: document.getElementById('sla')?.textContent ?? '',
    migrations: Array.from(document.querySelectorAll('#migrations li')).map((li) => li.textContent ?? ''),
    marks: document.querySelectorAll('#timeline circle.migration').length,
  }));
}

/** What the page's SLA attainment says for these counts. */
function slaText(c: RequestCounts): string {
  return `${((100 * c.withinSla) / (c.answered + c.failed)).toFixed(1)} % of ${c.answered + c.failed}`;
}

const placement = (d: Deployment) => Object.fromEntries(d.ops.map((o) => [o.id, o.node]));
function usdPerHour(d: Deployment): string {
  const rate = new Map(d.ops.map((o) => [o.node, d.usdPerHour[o.classId] ?? 0]));
  return `$${[...rate.values()].reduce((s, x) => s + x, 0).toFixed(2)}`;
}

describe('dashboard in headless Chromium', { skip }, () => {
  let nats: EmbeddedNats;
  let cluster: TestCluster;
  let dashboard: Dashboard;
  let browser: Browser;
  const shots = mkdtempSync(join(tmpdir(), 'stitch-dashboard-'));

  before(async () => {
    if (CHROMIUM === undefined) throw new Error(MISSING);
    nats = await startEmbeddedNats();
    // Two real cpu nodes, so the operators of the one that leaves have somewhere to go.
    cluster = await startCluster(nats, 'dash', { 'node-a': null, 'node-b': null, 'node-h100': 'h100' });
    const d = await cluster.coordinator.deploy(SAMPLE);
    const runner = new GraphRunner(cluster.client);
    runner.onRequest(reportRequests(cluster.client.ref({ type: 'stitch-coordinator', id: 'main' })));
    for (let i = 0; i < REQUESTS; i++)
      await runner.run(d, `r${i}`, { query: 'what is jetstream?', expr: '2+2', search: '' });
    // Reported with a tell: counted once the coordinator actor has handled them.
    await waitUntil(() => cluster.coordinator.requestCounts().tool_agent?.answered === REQUESTS, 10_000);
    dashboard = await startDashboard({ cluster: cluster.client, port: 0, refreshMs: 250 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await dashboard?.close();
    await cluster?.close();
    await nats?.stop();
  });

  test('the page shows the live cluster, then follows a migration', async (t) => {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${dashboard.url}/`);
    await page.waitForSelector('g.op');

    const before = cluster.coordinator.deployment('tool_agent')!;
    const records = await cluster.client.nodes();
    let view = await pageView(page);
    assert.deepEqual(view.ops, placement(before), 'each op drawn on the node the coordinator placed it on');
    assert.deepEqual(
      view.replicas,
      Object.fromEntries(before.ops.map((o) => [o.id, 1 + (o.replicas?.length ?? 0)])),
    );
    assert.deepEqual(view.nodes.sort(), records.map((r) => r.nodeId).sort());
    assert.match(view.nodeText, new RegExp(`pid ${process.pid}`), "the nodes' own records");
    assert.match(view.nodeText, /virtual:h100 \(modelled\)/);
    assert.equal(view.usdHour, usdPerHour(before));
    assert.equal(
      view.sla,
      slaText(cluster.coordinator.requestCounts().tool_agent!),
      'SLA attainment as reported',
    );
    assert.deepEqual(view.migrations, []);
    assert.ok(
      view.processed.every((n) => n >= REQUESTS),
      `each op box shows its actor's mailbox: ${view.processed}`,
    );
    const colours = new Set(Object.values(view.fills));
    assert.equal(colours.size, new Set(Object.values(placement(before))).size, 'one colour per node');
    const first = join(shots, 'before.png');
    await page.screenshot({ path: first, fullPage: true });

    assert.deepEqual(view.draining, []);
    // The node hosting most operators drains (as `stitch node` does on SIGTERM); the coordinator
    // moves them off it and the page must follow: the node marked draining, then gone.
    const count = new Map<string, number>();
    for (const o of before.ops) count.set(o.node, (count.get(o.node) ?? 0) + 1);
    const victim = [...count].sort((a, b) => b[1] - a[1])[0]![0];
    const leaving = cluster.nodes.get(victim)!;
    assert.equal(await leaving.node!.drain(60_000), 0);
    await page.waitForFunction(
      (node) => document.querySelectorAll(`#nodes .node.draining[data-node="${node}"]`).length > 0,
      victim,
      { timeout: 10_000 },
    );
    assert.match((await pageView(page)).nodeText, new RegExp(`${victim} · [^·]+ · draining`));
    await leaving.close();
    await page.waitForFunction(
      (gone) =>
        document.querySelectorAll('#migrations li').length > 0 &&
        !Array.from(document.querySelectorAll('g.op')).some((g) => g.dataset.node === gone) &&
        !Array.from(document.querySelectorAll('#nodes .node')).some((n) => n.dataset.node === gone),
      victim,
      { timeout: 60_000 },
    );
    // The page refreshes every 250 ms; wait until it shows the coordinator's settled record.
    const moved = cluster.coordinator.deployment('tool_agent')!;
    await page.waitForFunction(
      (want) =>
        Array.from(document.querySelectorAll('g.op')).every((g) => want[g.dataset.op!] === g.dataset.node),
      placement(moved),
      { timeout: 10_000 },
    );
    view = await pageView(page);
    assert.deepEqual(view.ops, placement(moved));
    assert.ok(!view.nodes.includes(victim), 'the node that left is gone from the nodes');
    assert.equal(view.marks, cluster.coordinator.migrations.length);
    assert.match(view.migrations[0]!, new RegExp(`node ${victim} is draining`));
    assert.match(view.migrations[0]!, new RegExp(`${victim}→`));
    assert.equal(view.usdHour, usdPerHour(moved));
    const second = join(shots, 'after.png');
    await page.screenshot({ path: second, fullPage: true });
    for (const f of [first, second]) assert.deepEqual(readFileSync(f).subarray(0, 4), PNG, f);
    assert.deepEqual(errors, []);
    t.diagnostic(`screenshots: ${first}, ${second}`);
  });

  test('the JSON state is the same data, and an API key guards it', async () => {
    const s = (await (await fetch(`${dashboard.url}/api/state`)).json()) as DashboardState;
    assert.equal(s.cluster, 'dash');
    assert.ok(s.coordinator.ok);
    const counts = cluster.coordinator.requestCounts().tool_agent!;
    assert.deepEqual(s.sla, {
      answered: counts.answered,
      failed: counts.failed,
      withinSla: counts.withinSla,
    });
    // The requests made before the dashboard started show in its first sample's attainment.
    const attained = s.history.filter((p) => p.attainment !== null);
    assert.equal(attained.length, 1, JSON.stringify(s.history.map((p) => p.attainment)));
    assert.equal(attained[0]!.attainment, counts.withinSla / (counts.answered + counts.failed));
    assert.deepEqual(
      s.deployments.map((d) => d.name),
      ['tool_agent'],
    );
    const key = 'k-0123456789abcdef0123';
    const keyed = await startDashboard({ cluster: cluster.client, port: 0, apiKey: key });
    try {
      assert.equal((await fetch(`${keyed.url}/api/state`)).status, 401);
      assert.equal((await fetch(`${keyed.url}/api/state?key=${key}`)).status, 200);
      assert.equal(
        (await fetch(`${keyed.url}/api/state`, { headers: { authorization: `Bearer ${key}` } })).status,
        200,
      );
      assert.equal((await fetch(`${keyed.url}/`)).status, 200, 'the page itself holds no data');
    } finally {
      await keyed.close();
    }
  });

  test('a node that sheds load is marked so, in the page and the JSON state', async () => {
    // Shedding past a ten-thousandth of the heap: this process's heap alone is more than that.
    const shedding = await connectCluster({ nats: nats.url, name: 'dash', log: () => undefined });
    try {
      await shedding.startNode({ id: 'node-shed', actors: [], shedding: { heapFraction: 1e-4 } });
      const page = await browser.newPage();
      await page.goto(`${dashboard.url}/`);
      await page.waitForFunction(
        () => document.querySelectorAll('#nodes .node.shedding[data-node="node-shed"]').length > 0,
        undefined,
        { timeout: 15_000 },
      );
      const view = await pageView(page);
      assert.match(view.nodeText, /node-shed · cpu · shedding load/);
      const s = (await (await fetch(`${dashboard.url}/api/state`)).json()) as DashboardState;
      const shown = s.nodes.map((n) => [n.id, n.shedding]).filter(([, on]) => on);
      assert.deepEqual(shown, [['node-shed', true]], 'only the node that sheds');
      await page.close();
    } finally {
      await shedding.close();
    }
  });
});
