/**
 * The token sequence of one multi-shot video as the DiT stores it (train/layout.py, in TS).
 *
 * Stream order (LCT, MOC.md §3; what traces and the visualisation use):
 *   [G text][cap 0][shot 0 frames …][cap 1][shot 1 frames …] … [cap S-1][shot S-1 frames …]
 * Internal order (what the model computes on): the text stream, then the video stream
 *   [G text, cap 0 … cap S-1 | shot 0 frames, …, shot S-1 frames]
 * Attention and routing only see chunk ids, so the kernels run on an *internal* chunk table
 * (text chunks first, then video chunks). It orders the video chunks exactly as the stream
 * table does, so causality ("an earlier chunk") and ties ("the lower chunk index") decide the
 * same; `toStream[c]` maps an internal chunk id to its stream id for traces.
 *
 * RoPE positions (t, y, x), floats (train/layout.py's choice):
 *   global caption t = 0; caption of shot s t = τ_s; frame f of shot s t = τ_s + 1 + f
 *   (τ_0 = 1, τ_{s+1} = τ_s + 1 + F_s); captions at y = x = (G − 1)/2, patches at (row, col).
 *
 * Legend: S shots, T frames, L caption tokens, G patches per side, N = Nt + Nv tokens,
 * Nt = (S+1)·L, Nv = T·G², C chunks.
 */
import { KIND_TEXT, KIND_VIDEO, buildChunkTable, tableFromChunks, type Chunk, type ChunkTable } from './layout.ts';

export interface Sequence {
  frames: readonly number[]; // [S]
  textLen: number; // L
  grid: number; // G
  chunkFrames: number;
  nText: number; // Nt
  nVideo: number; // Nv
  n: number; // N
  /** Stream-order chunk table (MOC.md §3), for traces and the visualisation. */
  stream: ChunkTable;
  /** Internal-order chunk table (text chunks, then video chunks), for the kernels. */
  internal: ChunkTable;
  /** internal chunk id → stream chunk id. [C] */
  toStream: Int32Array;
  /** Row of the per-shot conditioning (0: global caption, s + 1: shot s) of each token. [N] */
  cond: Int32Array;
  /** RoPE position (t, y, x) of each token, internal order. [N, 3] */
  pos: Float32Array;
  /** Shot of each frame. [T] */
  frameShot: Int32Array;
}

/**
 * The sequence of shots with `frames` frames each.
 * @throws LayoutError (layout.ts) for counts that are not positive integers.
 */
export function makeSequence(frames: readonly number[], textLen: number, grid: number, chunkFrames: number): Sequence {
  const S = frames.length;
  const P = grid * grid;
  const stream = buildChunkTable({
    globalCaptionTokens: textLen,
    shots: frames.map((f) => ({ captionTokens: textLen, frames: f })),
    tokensPerFrame: P,
    chunkFrames,
  });
  const nText = (S + 1) * textLen;
  const T = frames.reduce((a, b) => a + b, 0);
  const nVideo = T * P;
  const n = nText + nVideo;
  const C = stream.start.length;
  // internal order: text chunks (stream order among themselves), then video chunks
  const order = [...stream.chunks.keys()].sort(
    (a, b) => Number(stream.chunks[a].kind === 'video') - Number(stream.chunks[b].kind === 'video') || a - b,
  );
  const toStream = Int32Array.from(order);
  const chunks: Chunk[] = [];
  let at = 0;
  for (const c of order) {
    const s = stream.chunks[c];
    chunks.push({ start: at, end: at + s.end - s.start, kind: s.kind, shot: s.shot });
    at += s.end - s.start;
  }
  const internal = tableFromChunks(chunks);
  const cond = new Int32Array(n);
  const pos = new Float32Array(n * 3);
  const frameShot = new Int32Array(T);
  const centre = (grid - 1) / 2;
  let tau = 1;
  let v = nText; // next video token
  let frame = 0;
  for (let i = 0; i < textLen; i++) pos.set([0, centre, centre], i * 3); // global caption: cond 0, t 0
  frames.forEach((F, s) => {
    for (let i = (s + 1) * textLen; i < (s + 2) * textLen; i++) {
      cond[i] = s + 1;
      pos.set([tau, centre, centre], i * 3);
    }
    for (let f = 0; f < F; f++, frame++) {
      frameShot[frame] = s;
      for (let p = 0; p < P; p++, v++) {
        cond[v] = s + 1;
        pos.set([tau + 1 + f, Math.floor(p / grid), p % grid], v * 3);
      }
    }
    tau += 1 + F;
  });
  if (internal.n !== n || C !== internal.start.length)
    throw new Error(`sequence: internal table covers ${internal.n} tokens, expected ${n}`);
  return { frames, textLen, grid, chunkFrames, nText, nVideo, n, stream, internal, toStream, cond, pos, frameShot };
}

/** Chunk kinds as the kernels' column encoding (re-exported for the model's callers). */
export { KIND_TEXT, KIND_VIDEO };

/**
 * The shot-independent chunk table ('shot' mode): shot captions become members of their shot
 * (kind video), so the kernels' mandatory set "every text chunk + the query's shot" is exactly
 * train/moc.py's shot_mask: the global caption plus the query's own shot (caption and frames).
 */
export function shotOnlyTable(internal: ChunkTable): ChunkTable {
  return tableFromChunks(
    internal.chunks.map((c) => (c.kind === 'text' && c.shot >= 0 ? { ...c, kind: 'video' as const } : c)),
  );
}
