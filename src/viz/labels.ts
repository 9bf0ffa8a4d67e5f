/**
 * Placing text labels on a line without overlaps (pure: no DOM). Used for the shot labels of the
 * routing graph and the axis of the score chart, which at 8 or 32 shots have more labels than
 * room: the most important are kept, the rest dropped, none overlaps another or leaves [min, max].
 */

export interface LabelItem {
  /** Where the label wants its centre. */
  at: number;
  text: string;
  /** Higher first: kept before lower ones when they collide. */
  priority?: number;
}

export interface PlacedLabel {
  /** Index into the items given. */
  index: number;
  text: string;
  /** Left edge and width (the centre clamped so the label stays within [min, max]). */
  left: number;
  width: number;
}

/** Width of `text` at `fontPx` (a bound for the UI fonts: 0.62 em a character, plus padding). */
export function textWidth(text: string, fontPx: number): number {
  return text.length * fontPx * 0.62 + 4;
}

/**
 * Keeps labels, most important first (then left to right), while each keeps `gap` from every
 * label already kept. A label is clamped into [min, max] (never cut at an edge); one wider than
 * that range is dropped. Returned left to right.
 */
export function placeLabels(
  items: readonly LabelItem[],
  fontPx: number,
  min: number,
  max: number,
  gap = 4,
): PlacedLabel[] {
  const order = items
    .map((_, i) => i)
    .sort((a, b) => (items[b].priority ?? 0) - (items[a].priority ?? 0) || items[a].at - items[b].at);
  const kept: PlacedLabel[] = [];
  for (const i of order) {
    const width = textWidth(items[i].text, fontPx);
    if (width > max - min) continue;
    const left = Math.min(max - width, Math.max(min, items[i].at - width / 2));
    if (kept.some((k) => left < k.left + k.width + gap && k.left < left + width + gap)) continue;
    kept.push({ index: i, text: items[i].text, left, width });
  }
  return kept.sort((a, b) => a.left - b.left);
}

/**
 * Shot labels for bands [x0, x1] in pixels: "Shot 12" when every one fits, else the form of
 * `short` (e.g. "12") for as many as fit, each kept only where it does not overlap another.
 */
export function shotLabels(
  bands: ReadonlyArray<{ x0: number; x1: number; long: string; short: string }>,
  fontPx: number,
  min: number,
  max: number,
): PlacedLabel[] {
  // zoomed in, a band may be partly or wholly out of view: label the part in view, or not at all
  const seen = bands
    .map((b, index) => ({ index, x0: Math.max(min, b.x0), x1: Math.min(max, b.x1), b }))
    .filter((v) => v.x1 > v.x0);
  const place = (form: 'long' | 'short'): PlacedLabel[] =>
    placeLabels(
      seen.map((v) => ({ at: (v.x0 + v.x1) / 2, text: v.b[form] })),
      fontPx,
      min,
      max,
      6,
    ).map((p) => ({ ...p, index: seen[p.index].index }));
  const long = place('long');
  if (long.length === seen.length) return long;
  const short = place('short');
  return short.length > long.length ? short : long;
}

/** The colour of head h (0-based) wherever heads are told apart: the graph's arcs, the overview, the legend. */
export function headColor(h: number): string {
  return `hsl(${Math.round((h * 137.508 + 200) % 360)}, 70%, 66%)`;
}
