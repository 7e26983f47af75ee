/** The dashboard's page: static markup filled by /dashboard.js from the /api/events stream. */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stitch dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { display: flex; align-items: center; gap: 2rem; padding: .8rem 1.5rem; background: #1d2330; color: #fff; }
  header h1 { font-size: 1.2rem; margin: 0; }
  .stat { display: flex; flex-direction: column; }
  .stat .label { font-size: .75rem; opacity: .7; }
  .stat .value { font-size: 1.2rem; font-weight: 600; }
  main { padding: 1rem 1.5rem; display: grid; gap: 1rem; }
  section { background: #fff; border-radius: 6px; padding: .6rem 1rem 1rem; box-shadow: 0 1px 2px #0002; }
  h2 { font-size: 1rem; margin: .3rem 0 .6rem; }
  #nodes { display: flex; flex-wrap: wrap; gap: .8rem; }
  .node { border: 1px solid #ccd; border-left: 8px solid var(--c); border-radius: 4px; padding: .4rem .7rem; min-width: 15rem; }
  .node.unhealthy { background: #fee; }
  .node.draining { background: #fff6e0; }
  .node.shedding { background: #fde8e8; }
  .node .name { font-weight: 600; }
  .node .devices { font-size: .8rem; color: #556; }
  .bar { display: grid; grid-template-columns: 5.5rem 1fr 3rem; align-items: center; gap: .4rem; font-size: .8rem; }
  .bar .track { background: #eef; height: .5rem; border-radius: 3px; overflow: hidden; }
  .bar .fill { background: #4e79a7; height: 100%; }
  .graph text { font-size: 11px; }
  .legend { display: flex; gap: 1rem; font-size: .85rem; margin-top: .4rem; }
  .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .3rem; vertical-align: -1px; }
  #migrations { font-size: .85rem; padding-left: 1.2rem; }
  #status { font-size: .8rem; color: #a33; }
</style>
</head>
<body>
<header>
  <h1>stitch · <span id="cluster">connecting…</span></h1>
  <div class="stat"><span class="label">$/hour (placed devices)</span><span class="value" id="usd-hour">–</span></div>
  <div class="stat"><span class="label">SLA attainment (requests reported)</span><span class="value" id="sla">–</span></div>
  <div class="stat"><span class="label">nodes</span><span class="value" id="node-count">–</span></div>
  <div class="stat"><span class="label">migrations</span><span class="value" id="migration-count">–</span></div>
  <div class="stat"><span class="label">updated</span><span class="value" id="updated">–</span></div>
</header>
<main>
  <section><h2>Nodes: devices and load</h2><div id="nodes"></div></section>
  <section><h2>Agent graphs, coloured by placement</h2><div id="graphs"></div></section>
  <section><h2>Migration timeline</h2><svg id="timeline" width="900" height="56"></svg><ol id="migrations"></ol></section>
  <section><h2>$/hour, SLA attainment and queued messages over time</h2><svg id="cost-chart" width="900" height="140"></svg></section>
  <p id="status"></p>
</main>
<script type="module" src="/dashboard.js"></script>
</body>
</html>
`;
