/**
 * Rows of cells as lines: each column padded to its widest cell, two spaces apart, the columns
 * `right` names aligned to the right (numbers), the others to the left.
 */
export function alignColumns(rows: readonly string[][], right: (column: number) => boolean): string[] {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r.map((cell, c) => (right(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  '),
  );
}
