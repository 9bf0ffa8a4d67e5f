/**
 * Teaching mode: MoC routing of one query token, every number shown, computed on the CPU with
 * the contract's rules (src/model/moc-reference.ts) over the storyboard's real chunk table.
 *
 * `explainTokens` is the explanation itself: one layer's q and k [H, N, D] in stream order, the
 * chunk table, the query token and the routing options in; descriptors, scores, mandatory
 * anchors, the causal mask, candidates, top-k and the key set out. Its q and k come from
 * - the network (explain-network.ts): the loaded model's own, from one forward pass on a
 *   generated video, with the routing the network computed for the token;
 * - or, before there is a video, `explainQuery`'s traced example: one layer of H heads with head
 *   dim D, built from seeded vectors with the structure attention has in a video model (tokens
 *   of a frame share a direction, frames of a shot drift slowly, shots differ, captions are
 *   their own directions). Routing, mandatory anchors, the causal mask and top-k are the real
 *   ones for this layout.
 */
import { Rng } from '../engine/random.ts';
import { buildChunkTable, tokenChunks, type ChunkTable } from '../model/layout.ts';
import { chunkDescriptors, isCandidate, isMandatory, type MocDims } from '../model/moc-reference.ts';
import { WorkerError } from './errors.ts';
import type { ExplainRequest, ExplainedChunk, Explanation } from './protocol.ts';

/** Heads and head dim of the traced example. */
export const EXPLAIN_DIMS = { H: 2, D: 16 } as const;

/** How many leading values of q[h, i] an explanation shows. */
const QUERY_SHOWN = 8;

/** One layer's numbers for one query token: what `explainTokens` explains. */
export interface ExplainInput {
  /** q and k [H, N, D], tokens in the stream order of `table`. */
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  dims: MocDims;
  /** The chunk table in stream order (MOC.md §3). */
  table: ChunkTable;
  /** Stream index of the query token. */
  token: number;
  head: number;
  topK: number;
  causal: boolean;
  /** MOC.md §3b: the model's mandatory text is only the captions of shots ≤ the query's. */
  causalText?: boolean;
  /**
   * The chunks the network routed this (head, token) to, stream ids (−1: unused slot). Without
   * it, the routed set is the top-k of the scores computed here (the contract's rule).
   */
  routed?: ArrayLike<number>;
}

/** Where the numbers come from (the explanation's provenance fields). */
export type ExplainSource = Pick<Explanation, 'source' | 'origin' | 'network'>;

/** The explanation of one query token from one layer's q and k (both paths share it). */
export function explainTokens(input: ExplainInput, about: ExplainSource): Explanation {
  const { q, k, dims, table, token: i, head: h, topK, causal, causalText = false } = input;
  const { N, D } = dims;
  const C = table.start.length;
  const desc = chunkDescriptors(k, dims, table); //                                         [H, C, D]
  const a = tokenChunks(table)[i];
  const qi = Float64Array.from({ length: D }, (_, d) => q[(h * N + i) * D + d]);
  const scores = new Float64Array(C);
  for (let b = 0; b < C; b++) {
    let sc = 0;
    for (let d = 0; d < D; d++) sc += qi[d] * desc[(h * C + b) * D + d];
    scores[b] = sc;
  }
  // candidates by score, descending; ties to the lower chunk index; the first k are routed
  const cands: number[] = [];
  for (let b = 0; b < C; b++) if (isCandidate(table, a, b, causal)) cands.push(b);
  const order = cands.slice().sort((x, y) => scores[y] - scores[x] || x - y);
  const top = order.slice(0, Math.min(topK, order.length));
  const routedSet = new Set(input.routed ? Array.from(input.routed).filter((r) => r >= 0) : top);
  const differ = top.filter((b) => !routedSet.has(b));

  let keyTokens = 0;
  const chunks: ExplainedChunk[] = table.chunks.map((c, b) => {
    const mandatory = isMandatory(table, a, b, causalText);
    const candidate = cands.includes(b);
    const causalMasked = !mandatory && table.kind[a] === 1 && table.kind[b] === 1 && causal && b >= a;
    const routedHere = routedSet.has(b);
    if (mandatory || routedHere) keyTokens += c.end - c.start;
    return {
      ...c,
      index: b,
      tokens: c.end - c.start,
      score: scores[b],
      mandatory,
      causalMasked,
      candidate,
      rank: candidate ? order.indexOf(b) : null,
      routed: routedHere,
    };
  });

  return {
    ...about,
    ...(differ.length
      ? {
          note:
            `The network's float32 scores on the GPU route to chunk${routedSet.size > 1 ? 's' : ''} ${[...routedSet].join(', ')}, while these float64 scores ` +
            `rank chunk${differ.length > 1 ? 's' : ''} ${differ.join(', ')} into the top ${topK}: a near tie. The routed set shown is the network's.`,
        }
      : {}),
    heads: dims.H,
    headDim: D,
    head: h,
    queryToken: i,
    queryChunk: a,
    queryHead: Array.from(qi.subarray(0, Math.min(D, QUERY_SHOWN))),
    chunks,
    topK,
    causal,
    keyTokens,
    totalTokens: N,
  };
}

/**
 * Stream index of the query token: the shot's first frame token, plus frame and patch offsets.
 * @param frames frames per shot; @param heads heads of the layer explained.
 * @throws WorkerError `bad-request` when the query or head is outside the layout.
 */
export function locateQuery(
  table: ChunkTable,
  req: Pick<ExplainRequest, 'query' | 'head'>,
  frames: readonly number[],
  tokensPerFrame: number,
  heads: number,
): number {
  const { shot, frame, patch } = req.query;
  const F = frames[shot];
  if (F === undefined)
    throw new WorkerError('bad-request', `query shot ${shot} is not in the storyboard (${frames.length} shots)`);
  if (frame < 0 || frame >= F)
    throw new WorkerError('bad-request', `query frame ${frame} is outside shot ${shot + 1} (${F} frames)`);
  if (patch < 0 || patch >= tokensPerFrame)
    throw new WorkerError('bad-request', `query patch ${patch} is outside the frame (${tokensPerFrame} patches)`);
  if (req.head < 0 || req.head >= heads)
    throw new WorkerError('bad-request', `head ${req.head} is outside 0…${heads - 1}`);
  const first = table.chunks.findIndex((c) => c.kind === 'video' && c.shot === shot);
  return table.start[first] + frame * tokensPerFrame + patch;
}

/**
 * The seeded example's explanation (no network): the storyboard's chunk table, seeded q and k.
 * @throws WorkerError `bad-request` when the query is outside the layout.
 */
export function explainQuery(req: ExplainRequest): Explanation {
  const table = buildChunkTable({
    globalCaptionTokens: req.globalCaptionTokens,
    shots: req.shots,
    tokensPerFrame: req.tokensPerFrame,
    chunkFrames: req.chunkFrames,
  });
  const { H, D } = EXPLAIN_DIMS;
  const token = locateQuery(
    table,
    req,
    req.shots.map((s) => s.frames),
    req.tokensPerFrame,
    H,
  );
  const { q, k } = tracedExample(table, req, H, D);
  return explainTokens(
    { q, k, dims: { H, N: table.n, D }, table, token, head: req.head, topK: req.topK, causal: req.causal },
    {
      origin: 'example',
      source:
        `A seeded example on the CPU (src/model/moc-reference.ts), not the network's numbers: this storyboard's chunk table with seeded ` +
        `queries and keys (${H} heads, head dim ${D}); the routing rules are exactly MoC's.`,
    },
  );
}

/**
 * Seeded q, k [H, N, D]: a direction per shot, drifting per frame, one per token of noise;
 * caption chunks get their own directions. Queries lean towards their own frame's keys.
 */
function tracedExample(
  table: ChunkTable,
  req: ExplainRequest,
  H: number,
  D: number,
): { q: Float32Array; k: Float32Array } {
  const N = table.n;
  const rng = new Rng(req.seed);
  const q = new Float32Array(H * N * D);
  const k = new Float32Array(H * N * D);
  const shots = req.shots.length;
  for (let h = 0; h < H; h++) {
    const shotDir = Array.from({ length: shots + 1 }, () => rng.normals(D));
    const drift = Array.from({ length: shots }, () => rng.normals(D, 0.35));
    for (const c of table.chunks) {
      const base = c.kind === 'text' ? rng.normals(D, 0.8) : shotDir[c.shot];
      for (let t = c.start; t < c.end; t++) {
        const f = c.kind === 'video' ? Math.floor((t - c.start) / req.tokensPerFrame) + frameOffset(table, c, req) : 0;
        for (let d = 0; d < D; d++) {
          const center = base[d] + (c.kind === 'video' ? drift[c.shot][d] * f : 0);
          k[(h * N + t) * D + d] = center + rng.normal() * 0.5;
          q[(h * N + t) * D + d] = 0.6 * center + rng.normal() * 0.8;
        }
      }
    }
  }
  return { q, k };
}

/** Frame index (within its shot) of the first frame of video chunk `c`. */
function frameOffset(table: ChunkTable, c: ChunkTable['chunks'][number], req: ExplainRequest): number {
  let tokens = 0;
  for (const o of table.chunks) {
    if (o === c) break;
    if (o.kind === 'video' && o.shot === c.shot) tokens += o.end - o.start;
  }
  return tokens / req.tokensPerFrame;
}
