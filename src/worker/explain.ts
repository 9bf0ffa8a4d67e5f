/**
 * Teaching mode: MoC routing of one query token, every number shown, computed on the CPU with
 * the contract's reference (src/model/moc-reference.ts) over the storyboard's real chunk table.
 *
 * The queries and keys are a small traced example, not the network's: one layer of H heads
 * with head dim D, built from seeded vectors with the structure attention has in a video model
 * (tokens of a frame share a direction, frames of a shot drift slowly, shots differ, captions
 * are their own directions). Routing, mandatory anchors, the causal mask and top-k are the
 * real ones for this layout.
 */
import { Rng } from '../engine/random.ts';
import { buildChunkTable, tokenChunks, type ChunkTable } from '../model/layout.ts';
import { chunkDescriptors, isCandidate, isMandatory, routeReference } from '../model/moc-reference.ts';
import { WorkerError } from './errors.ts';
import type { ExplainRequest, ExplainedChunk, Explanation } from './protocol.ts';

/** Heads and head dim of the traced example. */
export const EXPLAIN_DIMS = { H: 2, D: 16 } as const;

/** Computes the explanation. @throws WorkerError `bad-request` when the query is outside the layout. */
export function explainQuery(req: ExplainRequest): Explanation {
  const table = buildChunkTable({
    globalCaptionTokens: req.globalCaptionTokens,
    shots: req.shots,
    tokensPerFrame: req.tokensPerFrame,
    chunkFrames: req.chunkFrames,
  });
  const { shot, frame, patch } = req.query;
  const s = req.shots[shot];
  if (!s) throw new WorkerError('bad-request', `query shot ${shot} is not in the storyboard (${req.shots.length} shots)`);
  if (frame < 0 || frame >= s.frames) throw new WorkerError('bad-request', `query frame ${frame} is outside shot ${shot + 1} (${s.frames} frames)`);
  if (patch < 0 || patch >= req.tokensPerFrame) throw new WorkerError('bad-request', `query patch ${patch} is outside the frame (${req.tokensPerFrame} patches)`);
  const { H, D } = EXPLAIN_DIMS;
  if (req.head < 0 || req.head >= H) throw new WorkerError('bad-request', `head ${req.head} is outside 0…${H - 1}`);

  const N = table.n;
  const i = queryToken(req, table);
  const { q, k } = tracedExample(table, req, H, D);
  const dims = { H, N, D };
  const desc = chunkDescriptors(k, dims, table);
  const cfg = { topK: req.topK, causal: req.causal, mode: 'moc' as const };
  // The reference routes every query; the explained one is row i.
  const routed = routeReference(q, desc, dims, table, cfg);
  const a = tokenChunks(table)[i];
  const qi = new Float64Array(H * D);
  for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) qi[h * D + d] = q[(h * N + i) * D + d];

  const h = req.head;
  const C = table.start.length;
  const scores = new Float64Array(C);
  for (let b = 0; b < C; b++) {
    let sc = 0;
    for (let d = 0; d < D; d++) sc += qi[h * D + d] * desc[(h * C + b) * D + d];
    scores[b] = sc;
  }
  const cands: number[] = [];
  for (let b = 0; b < C; b++) if (isCandidate(table, a, b, req.causal)) cands.push(b);
  const order = cands.slice().sort((x, y) => scores[y] - scores[x] || x - y);
  const routedSet = new Set<number>();
  for (let j = 0; j < req.topK; j++) {
    const r = routed[(h * N + i) * req.topK + j];
    if (r >= 0) routedSet.add(r);
  }

  let keyTokens = 0;
  const chunks: ExplainedChunk[] = table.chunks.map((c, b) => {
    const mandatory = isMandatory(table, a, b);
    const candidate = cands.includes(b);
    const causalMasked = !mandatory && table.kind[a] === 1 && table.kind[b] === 1 && req.causal && b >= a;
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
    source:
      `A traced example on the CPU (src/model/moc-reference.ts): this storyboard's chunk table with seeded ` +
      `queries and keys (${H} heads, head dim ${D}); the routing rules and numbers are exactly MoC's.`,
    heads: H,
    headDim: D,
    head: h,
    queryToken: i,
    queryChunk: a,
    queryHead: Array.from(qi.subarray(h * D, h * D + Math.min(D, 8))),
    chunks,
    topK: req.topK,
    causal: req.causal,
    keyTokens,
    totalTokens: N,
  };
}

/** Token index of the query: the shot's first frame token, plus frame and patch offsets. */
function queryToken(req: ExplainRequest, table: ChunkTable): number {
  const { shot, frame, patch } = req.query;
  const first = table.chunks.findIndex((c) => c.kind === 'video' && c.shot === shot);
  return table.start[first] + frame * req.tokensPerFrame + patch;
}

/**
 * Seeded q, k [H, N, D]: a direction per shot, drifting per frame, one per token of noise;
 * caption chunks get their own directions. Queries lean towards their own frame's keys.
 */
function tracedExample(table: ChunkTable, req: ExplainRequest, H: number, D: number): { q: Float32Array; k: Float32Array } {
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
