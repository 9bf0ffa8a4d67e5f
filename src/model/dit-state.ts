/**
 * What the MoC DiT (dit.ts) keeps per frame layout: index arrays, RoPE tables, gather maps and
 * chunk columns on the GPU, built once per (frames, chunkFrames) and reused by every forward
 * pass; plus the host-side tables (timestep features, RoPE). Legend as in dit.ts.
 */
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { ModelConfig } from './config.ts';
import type { ChunkTable } from './layout.ts';
import { makeSequence, shotOnlyTable, type Sequence } from './sequence.ts';

/**
 * What the network's per-token work needs for the rows it computes (Nt text rows, then Nv video
 * rows; N = Nt + Nv): every token of a sequence, or only the sampled shots' tokens when a cached
 * prefix supplies the rest (shot-cache.ts). The attention output o [H, No, D] they merge from
 * holds the computed rows from token `oOff` on (No = N and oOff = 0 without a prefix).
 */
export interface RowState {
  nText: number; // Nt
  nVideo: number; // Nv
  condText: Tensor; // i32 [Nt]: row of cs per text token
  condVideo: Tensor; // i32 [Nv]
  tokenType: Tensor; // i32 [H·N]: 0 text / 1 video, per row of [H, N, D]
  cos: Tensor; // [N, D] (the rope kernel's tables)
  sin: Tensor; // [N, D] (signed: −sin on even, +sin on odd channels)
  /** Tables of the 'spatial' routing view: positions with time 0 (only for such a model). */
  routeCos?: Tensor; // [N, D]
  routeSin?: Tensor; // [N, D]
  gatherQkv: [Tensor, Tensor, Tensor]; // i32 [H·N]: row of qkv [N·3H, D] for q, k, v
  mergeText: Tensor; // i32 [Nt·H]: row of o [H·No, D]
  mergeVideo: Tensor; // i32 [Nv·H]
}

/** Per-sequence GPU constants: index arrays, RoPE tables, gather maps, chunk columns. */
export interface SeqState extends RowState {
  seq: Sequence;
  chunkStart: Tensor; // i32 [C], internal table
  chunkEnd: Tensor;
  chunkKind: Tensor;
  chunkShot: Tensor;
  toStream: Tensor; // i32 [C]: internal → stream chunk id (traces)
  streamStart: Tensor; // i32 [C]: token range (internal order) of stream chunk s, so chunk means
  streamEnd: Tensor; //   of q and k come out in stream order (traces)
  shotTable: ChunkTable; // internal table for 'shot' mode
  shotStream: ChunkTable; // the same in stream order (traces)
  noRoutes?: Tensor; // i32 [H, N, W] all −1 ('shot' mode)
}

const f32 = Math.fround;

/** Sinusoidal timestep features [rows, F] as train/model.py's TimestepEmbed (f32 steps). */
export function timestepFeatures(t: ArrayLike<number>, freqDim: number): Float32Array {
  const half = freqDim / 2;
  const out = new Float32Array(t.length * freqDim);
  const lnBase = f32(-Math.log(10000));
  for (let r = 0; r < t.length; r++) {
    const tt = f32(f32(t[r]) * 1000);
    for (let j = 0; j < half; j++) {
      const freq = f32(Math.exp(f32(f32(lnBase * j) / half)));
      const arg = f32(tt * freq);
      out[r * freqDim + j] = Math.cos(arg);
      out[r * freqDim + half + j] = Math.sin(arg);
    }
  }
  return out;
}

/** RoPE tables cos, signed sin [N, D] for float positions pos [N, 3] (train/model.py rope_tables). */
export function ropeTables(
  pos: Float32Array,
  headDim: number,
  theta: number,
): { cos: Float32Array; sin: Float32Array } {
  const pairs = headDim / 2;
  const nSp = Math.floor(pairs / 3);
  const nT = pairs - 2 * nSp;
  const freqs: Array<[number, number]> = []; // (axis, frequency) per pair
  for (const [axis, n] of [
    [0, nT],
    [1, nSp],
    [2, nSp],
  ] as const) {
    for (let j = 0; j < n; j++) freqs.push([axis, f32(theta ** f32(-j / n))]);
  }
  const N = pos.length / 3;
  const cos = new Float32Array(N * headDim);
  const sin = new Float32Array(N * headDim);
  for (let i = 0; i < N; i++) {
    freqs.forEach(([axis, fr], j) => {
      const a = f32(pos[i * 3 + axis] * fr);
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[i * headDim + 2 * j] = c;
      cos[i * headDim + 2 * j + 1] = c;
      sin[i * headDim + 2 * j] = -s;
      sin[i * headDim + 2 * j + 1] = s;
    });
  }
  return { cos, sin };
}

/**
 * Uploads the per-token constants of Nt text rows then Nv video rows with RoPE positions `pos`
 * [N, 3] and conditioning rows `cond` [N]; o's rows for them start at `oOff` in o [H, No, D].
 */
export function buildRowState(
  eng: Engine,
  cfg: ModelConfig,
  rows: { pos: Float32Array; cond: Int32Array; nText: number; nVideo: number },
  No: number,
  oOff: number,
): RowState {
  const { heads: H, headDim: D } = cfg;
  const { nText: Nt, nVideo: Nv } = rows;
  const N = Nt + Nv;
  const up = (a: Int32Array, label: string): Tensor => eng.upload(a, [a.length], `dit.seq.${label}`);
  const type = new Int32Array(H * N);
  const gather = [0, 1, 2].map(() => new Int32Array(H * N));
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      type[h * N + n] = n < Nt ? 0 : 1;
      for (let j = 0; j < 3; j++) gather[j][h * N + n] = n * 3 * H + j * H + h;
    }
  }
  const mergeText = new Int32Array(Nt * H);
  const mergeVideo = new Int32Array(Nv * H);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < Nt; n++) mergeText[n * H + h] = h * No + oOff + n;
    for (let n = 0; n < Nv; n++) mergeVideo[n * H + h] = h * No + oOff + Nt + n;
  }
  const { cos, sin } = ropeTables(rows.pos, D, cfg.ropeTheta);
  return {
    nText: Nt,
    nVideo: Nv,
    condText: up(rows.cond.slice(0, Nt), 'cond-text'),
    condVideo: up(rows.cond.slice(Nt), 'cond-video'),
    tokenType: up(type, 'token-type'),
    cos: eng.upload(cos, [N, D], 'dit.seq.rope-cos'),
    sin: eng.upload(sin, [N, D], 'dit.seq.rope-sin'),
    gatherQkv: [up(gather[0], 'gather-q'), up(gather[1], 'gather-k'), up(gather[2], 'gather-v')],
    mergeText: up(mergeText, 'merge-text'),
    mergeVideo: up(mergeVideo, 'merge-video'),
  };
}

/** Uploads the constants of one frame layout. */
export function buildSeqState(eng: Engine, cfg: ModelConfig, frames: readonly number[], chunkFrames: number): SeqState {
  const seq = makeSequence(frames, cfg.textLen, cfg.grid, chunkFrames);
  const N = seq.n;
  const D = cfg.headDim;
  // the 'spatial' routing view's tables: the positions with time 0 (full sequences only: the
  // cache of kept shots routes with q, k as rotated)
  const spatial =
    cfg.routeView === 'spatial'
      ? ropeTables(
          seq.pos.map((p, j) => (j % 3 === 0 ? 0 : p)),
          D,
          cfg.ropeTheta,
        )
      : null;
  const up = (a: Int32Array, label: string): Tensor => eng.upload(a, [a.length], `dit.seq.${label}`);
  const t = seq.internal;
  const streamStart = new Int32Array(t.start.length);
  const streamEnd = new Int32Array(t.start.length);
  seq.toStream.forEach((s, c) => {
    streamStart[s] = t.start[c];
    streamEnd[s] = t.end[c];
  });
  return {
    seq,
    ...buildRowState(eng, cfg, seq, seq.n, 0),
    ...(spatial && {
      routeCos: eng.upload(spatial.cos, [N, D], 'dit.seq.route-cos'),
      routeSin: eng.upload(spatial.sin, [N, D], 'dit.seq.route-sin'),
    }),
    chunkStart: up(t.start, 'chunk-start'),
    chunkEnd: up(t.end, 'chunk-end'),
    chunkKind: up(t.kind, 'chunk-kind'),
    chunkShot: up(t.shot, 'chunk-shot'),
    toStream: up(seq.toStream, 'to-stream'),
    streamStart: up(streamStart, 'stream-start'),
    streamEnd: up(streamEnd, 'stream-end'),
    shotTable: shotOnlyTable(t),
    shotStream: shotOnlyTable(seq.stream),
  };
}

/** Frees a row state's tensors. */
export function disposeRows(r: RowState): void {
  for (const t of [r.condText, r.condVideo, r.tokenType, r.cos, r.sin, ...r.gatherQkv, r.mergeText, r.mergeVideo])
    t.dispose();
}

export function disposeState(st: SeqState): void {
  disposeRows(st);
  for (const t of [st.chunkStart, st.chunkEnd, st.chunkKind, st.chunkShot, st.toStream, st.streamStart, st.streamEnd])
    t.dispose();
  for (const t of [st.noRoutes, st.routeCos, st.routeSin]) t?.dispose();
}
