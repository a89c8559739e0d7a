// Finding the published study's numbers in a rendered report, for the report tests.

/** The numeric leaves of published.json, each with its path. */
export function publishedLeaves(v: unknown, path = ''): [string, number][] {
  if (typeof v === 'number') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => publishedLeaves(x, `${path}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => publishedLeaves(x, path ? `${path}.${k}` : k));
  return [];
}

/** Every number written in a Markdown text, however it was printed (0.80 and 0.8 are one number). */
export function numbersIn(text: string): Set<number> {
  return new Set(text.split(/[\s|,:;()*`]+/).map((t) => Number(t.replace(/\.$/, ''))).filter(Number.isFinite));
}
