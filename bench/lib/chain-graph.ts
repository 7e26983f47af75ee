// The agent graph the IR and solve-lag benchmarks grow: a chain of `n` steps (llm → tool), the shape
// of a long tool-using session.
import { AgentGraphBuilder, type Graph } from '../../packages/ir/src/index.js';

export function chainGraph(n: number): Graph {
  const b = new AgentGraphBuilder(`chain${n}`).input('q');
  let prev = 'q';
  for (let i = 0; i < n; i++) {
    b.llm(`l${i}`, { model: 'llama3-8b', promptTokens: 512, maxTokens: 64 }).tool(`t${i}`, 'web_search');
    b.edge(prev, `l${i}`).edge(`l${i}`, `t${i}`);
    prev = `t${i}`;
  }
  return b.output('a').edge(prev, 'a').toGraph();
}
