// Summarises a sampling heap profile (see heap-sampler.ts): which functions allocated the most.

/** The environment variable that names the file heap-sampler.ts writes its profile to. */
export const HEAP_PROFILE_ENV = 'STITCH_HEAP_PROFILE';

export interface SamplingHeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingHeapProfileNode[];
}

const whereOf = ({ functionName, url, lineNumber }: SamplingHeapProfileNode['callFrame']) =>
  `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|packages)\//, '')}:${lineNumber + 1}`;

/**
 * The functions that allocated the most sampled bytes, with their share of all of them. A builtin's
 * allocation (a Set's `add` growing its table; no script) is named with the function that called it.
 */
export function topSelfSizes(
  head: SamplingHeapProfileNode,
  n: number,
): { where: string; bytes: number; share: number }[] {
  const byWhere = new Map<string, number>();
  let total = 0;
  const visit = (node: SamplingHeapProfileNode, caller: string) => {
    const here = whereOf(node.callFrame);
    const where = node.callFrame.url === '' && caller ? `${here} ← ${caller}` : here;
    byWhere.set(where, (byWhere.get(where) ?? 0) + node.selfSize);
    total += node.selfSize;
    for (const c of node.children) visit(c, node.callFrame.url === '' ? caller : here);
  };
  visit(head, '');
  return [...byWhere]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([where, bytes]) => ({ where, bytes, share: +(bytes / Math.max(1, total)).toFixed(3) }));
}
