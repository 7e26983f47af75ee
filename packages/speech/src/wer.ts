/** Words as recognisers emit them: lower case, punctuation dropped, apostrophes kept ("don't"). */
export function normaliseWords(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+(?:'[a-z]+)?/g) ?? [];
}

/** The edit that turns the reference's words into the hypothesis's with the fewest changes. */
export interface WordErrors {
  words: number;
  substitutions: number;
  deletions: number;
  insertions: number;
}

/** Word-level Levenshtein alignment of a hypothesis against its reference. */
export function wordErrors(reference: string, hypothesis: string): WordErrors {
  const r = normaliseWords(reference);
  const h = normaliseWords(hypothesis);
  // cost[j] and its S/D/I break-down for the prefix r[0..i) vs h[0..j), one row at a time.
  type Cell = { cost: number; s: number; d: number; i: number };
  let prev: Cell[] = h.map((_, j) => ({ cost: j, s: 0, d: 0, i: j }));
  prev.push({ cost: h.length, s: 0, d: 0, i: h.length });
  for (let i = 1; i <= r.length; i++) {
    const row: Cell[] = [{ cost: i, s: 0, d: i, i: 0 }];
    for (let j = 1; j <= h.length; j++) {
      const diag = prev[j - 1]!;
      const same = r[i - 1] === h[j - 1];
      const options: Cell[] = [
        { ...diag, cost: diag.cost + (same ? 0 : 1), s: diag.s + (same ? 0 : 1) },
        { ...prev[j]!, cost: prev[j]!.cost + 1, d: prev[j]!.d + 1 },
        { ...row[j - 1]!, cost: row[j - 1]!.cost + 1, i: row[j - 1]!.i + 1 },
      ];
      row.push(options.reduce((a, b) => (b.cost < a.cost ? b : a)));
    }
    prev = row;
  }
  const last = prev[h.length]!;
  return { words: r.length, substitutions: last.s, deletions: last.d, insertions: last.i };
}

/** (S + D + I) ÷ N over a set of utterances, the words of all of them pooled. */
export function wordErrorRate(pairs: readonly { reference: string; hypothesis: string }[]): number {
  let errors = 0;
  let words = 0;
  for (const p of pairs) {
    const e = wordErrors(p.reference, p.hypothesis);
    errors += e.substitutions + e.deletions + e.insertions;
    words += e.words;
  }
  return words === 0 ? 0 : errors / words;
}
