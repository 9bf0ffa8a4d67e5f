/**
 * The routing DAG's layout and data, as pure functions (no three.js): where each chunk sits on
 * the timeline, which routed edges to draw and how heavy, and the score profile of one chunk.
 *
 * World units: x is time in frames (shots separated by SHOT_GAP), y is up. Video chunks sit on
 * the row y = 0 and span their frames; caption chunks sit on the row y = CAPTION_Y, each shot's
 * caption above the shot's first frame and the global caption left of everything.
 *
 * Also the readers of a layer's trace (LayerTrace, model/api.ts): its mean scores and route counts.
 *
 * Legend: C chunks, H heads, D head dim, Ly layers. Traces are in stream order (MOC.md §3).
 */
import type { LayerTrace, StepTrace } from '../model/api.ts';
import type { ChunkTable } from '../model/layout.ts';

export const SHOT_GAP = 1;
export const CAPTION_Y = 2.2;
export const VIDEO_H = 1;
export const CAPTION_H = 0.8;
export const CAPTION_W = 2;

export interface NodeBox {
  index: number;
  kind: 'text' | 'video';
  shot: number;
  tokens: number;
  /** Left, bottom, width, height in world units. */
  x: number;
  y: number;
  w: number;
  h: number;
  /** Frames of its shot covered (video), as [first, end). */
  frames: [number, number] | null;
}

export interface ShotBand {
  shot: number;
  x0: number;
  x1: number;
}

export interface DagLayout {
  nodes: NodeBox[];
  shots: ShotBand[];
  bounds: { x0: number; x1: number; y0: number; y1: number };
}

/** Greatest common divisor of the video chunks' token counts: the tokens of one frame (or of chunkFrames frames). */
export function frameUnit(table: ChunkTable): number {
  let g = 0;
  for (const c of table.chunks) if (c.kind === 'video') g = gcd(g, c.end - c.start);
  return g || 1;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Positions every chunk. `tokensPerFrame` defaults to frameUnit(table), so a chunk's width is
 * its frame count (or its count of chunkFrames-groups when every chunk is full).
 */
export function layoutDag(table: ChunkTable, tokensPerFrame = frameUnit(table)): DagLayout {
  const nodes: NodeBox[] = [];
  const shots: ShotBand[] = [];
  const shotStart = new Map<number, number>();
  let x = 0;
  let frameInShot = 0;
  let shot = Number.NaN;
  // First pass: video chunks along the time axis, shots separated by a gap.
  table.chunks.forEach((c, index) => {
    if (c.kind !== 'video') return;
    if (c.shot !== shot) {
      if (shots.length) x += SHOT_GAP;
      shot = c.shot;
      frameInShot = 0;
      shotStart.set(shot, x);
      shots.push({ shot, x0: x, x1: x });
    }
    const w = (c.end - c.start) / tokensPerFrame;
    nodes.push({
      index,
      kind: 'video',
      shot: c.shot,
      tokens: c.end - c.start,
      x,
      y: 0,
      w,
      h: VIDEO_H,
      frames: [frameInShot, frameInShot + w],
    });
    x += w;
    frameInShot += w;
    shots[shots.length - 1].x1 = x;
  });
  // Second pass: captions above their shot (a shot without frames gets a band of its own).
  table.chunks.forEach((c, index) => {
    if (c.kind !== 'text') return;
    let cx: number;
    if (c.shot < 0) cx = -SHOT_GAP - CAPTION_W;
    else if (shotStart.has(c.shot)) cx = shotStart.get(c.shot)!;
    else {
      cx = shots.length ? shots[shots.length - 1].x1 + SHOT_GAP : 0;
      shotStart.set(c.shot, cx);
      shots.push({ shot: c.shot, x0: cx, x1: cx + CAPTION_W });
    }
    const band = shots.find((s) => s.shot === c.shot);
    const w = band ? Math.min(CAPTION_W, Math.max(0.5, band.x1 - band.x0)) : CAPTION_W;
    nodes.push({
      index,
      kind: 'text',
      shot: c.shot,
      tokens: c.end - c.start,
      x: cx,
      y: CAPTION_Y,
      w,
      h: CAPTION_H,
      frames: null,
    });
  });
  nodes.sort((a, b) => a.index - b.index);
  const x0 = Math.min(0, ...nodes.map((n) => n.x));
  const x1 = Math.max(1, ...nodes.map((n) => n.x + n.w));
  return { nodes, shots, bounds: { x0, x1, y0: -Math.max(2, (x1 - x0) / 6), y1: CAPTION_Y + CAPTION_H } };
}

/** The node under world point (x, y), or null. */
export function hitTest(layout: DagLayout, x: number, y: number): number | null {
  for (const n of layout.nodes) if (x >= n.x && x <= n.x + n.w && y >= n.y && y <= n.y + n.h) return n.index;
  return null;
}

/** `-1` aggregates over all layers / heads. */
export interface EdgeFilter {
  layer: number;
  head: number;
}

export interface DagEdge {
  /** Query chunk (edge tail) and key chunk (edge head). */
  from: number;
  to: number;
  /** Query tokens that routed from→to, summed over the selected layers and heads. */
  count: number;
  /** count / (tokens of `from` × selected layers × heads): the share of from's queries that took it. */
  share: number;
  /** share / the largest share drawn (0…1], for line width and opacity. */
  weight: number;
  /** The selected head that routed the most of these queries (the lower head on a tie): the edge's colour. */
  head: number;
}

/**
 * The mean routing score of chunk a's queries against chunk b in one layer's trace, head h: the
 * mean over the query tokens i of a of q[h,i]·φ_h(K_b), which is φ_h(Q_a)·φ_h(K_b) because the
 * score is linear in q. Defined for every pair, including text query chunks and non-candidates
 * (mask with `mandatory` and causality as needed). D multiply-adds, summed in float64.
 */
export function meanScore(t: LayerTrace, h: number, a: number, b: number): number {
  const { C, D, qMean, desc } = t;
  const qa = (h * C + a) * D;
  const kb = (h * C + b) * D;
  let s = 0;
  for (let d = 0; d < D; d++) s += qMean[qa + d] * desc[kb + d];
  return s;
}

/** out[b] += meanScore(t, h, a, b) for every chunk b: the score row of a (C·D multiply-adds). @param out [C] */
export function addScores(t: LayerTrace, h: number, a: number, out: Float64Array): void {
  for (let b = 0; b < t.C; b++) out[b] += meanScore(t, h, a, b);
}

/**
 * out[at + b] += the query tokens of chunk a that routed to chunk b (head h), for every b.
 * @param out [at + C]
 */
export function addRoutes(t: LayerTrace, h: number, a: number, out: Float64Array, at = 0): void {
  const { start, to, count } = t.routes;
  const r = h * t.C + a;
  for (let e = start[r]; e < start[r + 1]; e++) out[at + to[e]] += count[e];
}

/** The layers and heads a filter selects, clamped to what the trace has. */
function selection(trace: StepTrace, f: EdgeFilter): { layers: number[]; heads: number[]; H: number; C: number } {
  const C = trace.chunks.start.length;
  const H = trace.layers[0]?.H ?? 0;
  const layers = f.layer >= 0 && f.layer < trace.layers.length ? [f.layer] : trace.layers.map((_, i) => i);
  const heads = f.head >= 0 && f.head < H ? [f.head] : Array.from({ length: H }, (_, h) => h);
  return { layers, heads, H, C };
}

/** Routed edges with at least one query, heaviest first. */
export function routedEdges(trace: StepTrace, filter: EdgeFilter): DagEdge[] {
  const { layers, heads, C } = selection(trace, filter);
  const sum = new Float64Array(C * C);
  const one = new Float64Array(C * C);
  const best = new Float64Array(C * C);
  const bestHead = new Int16Array(C * C).fill(-1);
  for (const h of heads) {
    one.fill(0);
    for (const l of layers) for (let a = 0; a < C; a++) addRoutes(trace.layers[l], h, a, one, a * C);
    for (let i = 0; i < one.length; i++) {
      sum[i] += one[i];
      if (one[i] > best[i]) [best[i], bestHead[i]] = [one[i], h];
    }
  }
  const edges: DagEdge[] = [];
  const per = Math.max(1, layers.length * heads.length);
  for (let a = 0; a < C; a++) {
    const tokens = trace.chunks.end[a] - trace.chunks.start[a];
    for (let b = 0; b < C; b++) {
      const n = sum[a * C + b];
      if (n > 0)
        edges.push({ from: a, to: b, count: n, share: n / (tokens * per), weight: 0, head: bestHead[a * C + b] });
    }
  }
  const max = edges.reduce((m, e) => Math.max(m, e.share), 0);
  for (const e of edges) e.weight = max > 0 ? e.share / max : 0;
  return edges.sort((x, y) => y.share - x.share || x.from - y.from || x.to - y.to);
}

/** Mandatory links a→b (a ≠ b) from the trace, for video query chunks. */
export function mandatoryEdges(trace: StepTrace): Array<{ from: number; to: number }> {
  const C = trace.chunks.start.length;
  const m = trace.layers[0]?.mandatory;
  const out: Array<{ from: number; to: number }> = [];
  if (!m) return out;
  for (let a = 0; a < C; a++) {
    if (trace.chunks.kind[a] !== 1) continue;
    for (let b = 0; b < C; b++) if (a !== b && m[a * C + b]) out.push({ from: a, to: b });
  }
  return out;
}

export type ChunkRole = 'self' | 'mandatory' | 'causal-masked' | 'candidate' | 'text-query';

export interface ScoreBar {
  chunk: number;
  /** Mean routing score φ(Q_a)·φ(K_b) over the selected layers and heads. */
  score: number;
  role: ChunkRole;
  /** Share of a's queries that routed to b (0 for non-candidates). */
  share: number;
  /** Rank among candidates by score (0 best), null otherwise. */
  rank: number | null;
}

export interface ScoreProfile {
  chunk: number;
  bars: ScoreBar[];
  /** The score of the k-th best candidate (the top-k cut), null with fewer than k+1 candidates or k = 0. */
  topKCut: number | null;
  /** Chunks at index ≥ this are masked by causality (null when not causal or for text queries). */
  causalCut: number | null;
}

/**
 * The score bar chart of chunk `a`: every chunk's mean score with its role, the top-k cut
 * (between the k-th and (k+1)-th best candidate) and the causal cut (at `a`).
 */
export function scoreProfile(
  trace: StepTrace,
  a: number,
  filter: EdgeFilter,
  topK: number,
  causal: boolean,
): ScoreProfile {
  const { layers, heads, C } = selection(trace, filter);
  const kind = trace.chunks.kind;
  const per = Math.max(1, layers.length * heads.length);
  const tokens = trace.chunks.end[a] - trace.chunks.start[a];
  const scores = new Float64Array(C);
  const counts = new Float64Array(C);
  for (const l of layers) {
    for (const h of heads) {
      addScores(trace.layers[l], h, a, scores);
      addRoutes(trace.layers[l], h, a, counts);
    }
  }
  const bars: ScoreBar[] = [];
  for (let b = 0; b < C; b++) {
    const mandatory = trace.layers[0]?.mandatory[a * C + b] === 1;
    const role: ChunkRole =
      kind[a] !== 1
        ? 'text-query'
        : b === a
          ? 'self'
          : mandatory
            ? 'mandatory'
            : kind[b] !== 1
              ? 'mandatory'
              : causal && b > a
                ? 'causal-masked'
                : 'candidate';
    bars.push({ chunk: b, score: scores[b] / per, role, share: counts[b] / (tokens * per), rank: null });
  }
  const cands = bars.filter((b) => b.role === 'candidate').sort((x, y) => y.score - x.score || x.chunk - y.chunk);
  cands.forEach((b, i) => (b.rank = i));
  const topKCut = topK > 0 && cands.length > topK ? (cands[topK - 1].score + cands[topK].score) / 2 : null;
  return { chunk: a, bars, topKCut, causalCut: causal && kind[a] === 1 ? a : null };
}

/** Edges touching `chunk`: those it routes to (outgoing) and those routing to it (incoming). */
export function edgesOf(edges: readonly DagEdge[], chunk: number): { outgoing: DagEdge[]; incoming: DagEdge[] } {
  return { outgoing: edges.filter((e) => e.from === chunk), incoming: edges.filter((e) => e.to === chunk) };
}

/** A trace at `step` (-1: the latest), or null. */
export function traceAt(traces: readonly StepTrace[], step: number): StepTrace | null {
  if (!traces.length) return null;
  if (step < 0) return traces[traces.length - 1];
  return traces.find((t) => t.step === step) ?? null;
}

export interface HeadCell {
  layer: number;
  head: number;
  /** 1 − |Ω|/N² of this head in this layer. */
  sparsity: number;
  /** With a chunk in focus: the chunk its queries routed to most in this layer and head (null: none), and the share of them that did. */
  top: number | null;
  topShare: number;
}

/**
 * The layer × head overview: one cell per layer and head, its sparsity and, when `chunk` is given,
 * where that chunk's queries routed most in that layer and head — so the cells tell at a glance
 * which layers and heads route differently. Cells by layer, then head.
 */
export function headOverview(trace: StepTrace, chunk: number | null): HeadCell[] {
  const C = trace.chunks.start.length;
  const cells: HeadCell[] = [];
  const row = new Float64Array(C);
  const valid = chunk !== null && chunk >= 0 && chunk < C;
  const tokens = valid ? trace.chunks.end[chunk] - trace.chunks.start[chunk] : 1;
  trace.layers.forEach((t, layer) => {
    for (let head = 0; head < t.H; head++) {
      let top: number | null = null;
      let topShare = 0;
      if (valid) {
        row.fill(0);
        addRoutes(t, head, chunk, row);
        for (let b = 0; b < C; b++) if (row[b] > 0 && (top === null || row[b] > row[top])) top = b;
        topShare = top === null ? 0 : row[top] / tokens;
      }
      cells.push({ layer, head, sparsity: t.sparsity[head], top, topShare });
    }
  });
  return cells;
}
