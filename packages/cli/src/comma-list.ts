/** The items of a comma-separated option value, trimmed, empty ones left out. */
export function commaList(value: string): string[] {
  return value
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}
