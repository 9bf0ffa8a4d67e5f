/**
 * The kept-shot cache (MOC.md §3b): for a model trained context-causal (`causalText`) run with
 * causal MoC routing, no token of shot s depends on a later shot. Shots kept fixed at t = 0
 * before the first sampled shot P (the "prefix": the global caption and shots 0..P−1) then have
 * the same keys, values and chunk descriptors at every sampler step, so one forward pass over
 * the prefix alone fills them per layer, and each step runs only the sampled shots' tokens (the
 * "suffix": shots P..S−1) through the network, attending over the cached prefix and themselves.
 *
 * Token order of the cached attention (the "attention order"): the prefix's internal order (its
 * text chunks, then its video chunks), then the suffix's (its captions, then its frames). Video
 * chunks keep their stream order, so causality and ties decide as on the whole sequence; text
 * chunks are never routed, so their place does not matter.
 *
 * Legend: H heads, D head dim, N = Np + Ns tokens (prefix, suffix), C = Cp + Cs chunks, K top-k,
 * T = Tp + Ts frames. Every buffer below is head-major, rows of D values.
 */
import type { Engine } from '../engine/engine.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { ModelConfig } from './config.ts';
import { tableFromChunks, type Chunk, type ChunkTable } from './layout.ts';
import { buildRowState, disposeRows, type RowState } from './dit-state.ts';
import { makeSequence } from './sequence.ts';

/** The GPU constants of one (frames, chunkFrames, first sampled shot) split. */
export interface PrefixLayout {
  /** First sampled shot P (shots before it are cached). */
  first: number;
  n: number; // N
  nPrefix: number; // Np
  nSuffix: number; // Ns
  cPrefix: number; // Cp
  /** Frames of the prefix (Tp) and of the whole board (T). */
  framesPrefix: number;
  frames: number;
  /** Attention-order chunk table over all N tokens. */
  table: ChunkTable;
  /** The suffix rows (o rows from Np on in o [H, N, D]). */
  rows: RowState;
  /** First text row of the suffix in the whole text stream ((P+1)·L). */
  textStart: number;
  chunkStart: Tensor; // i32 [C] attention order
  chunkKind: Tensor; // i32 [C]
  chunkShot: Tensor; // i32 [C]
  suffixStart: Tensor; // i32 [Cs] token ranges of the suffix chunks (attention order)
  suffixEnd: Tensor; // i32 [Cs]
  frameIdx: Tensor; // i32 [Ts]: Tp..T−1, the suffix frames of x
  qMap: Tensor; // i32 [H·N] row of q_suffix [H·Ns, D] (prefix rows: the head's first, unused)
  kMap: Tensor; // i32 [H·N] row of a layer's kv buffer
  vMap: Tensor; // i32 [H·N]
  descMap: Tensor; // i32 [H·C] row of a layer's desc buffer
}

/** One conditioning's cached prefix: per layer its keys, values and descriptors. */
export interface PrefixCache {
  /**
   * Per layer: kv [2·H·N, D] = prefix k [H, Np, D], prefix v [H, Np, D], then this step's suffix
   * k [H, Ns, D] and v [H, Ns, D]; desc [H·C, D] = prefix descriptors [H, Cp, D], then the suffix's.
   */
  layers: Array<{ kv: Tensor; desc: Tensor }>;
  /** i32 [H, N, K]: prefix rows −1 (never routed: their queries are not computed). */
  routed: Tensor;
}

/**
 * Builds the layout of frames split before shot `first` (1 ≤ first < S).
 * @throws RangeError for a split outside the board.
 */
export function buildPrefixLayout(
  eng: Engine,
  cfg: ModelConfig,
  frames: readonly number[],
  chunkFrames: number,
  first: number,
): PrefixLayout {
  const S = frames.length;
  if (!Number.isInteger(first) || first < 1 || first >= S)
    throw new RangeError(`prefix split ${first} is outside 1..${S - 1}`);
  const { heads: H, textLen: L, grid: G } = cfg;
  const full = makeSequence(frames, L, G, chunkFrames);
  const pre = makeSequence(frames.slice(0, first), L, G, chunkFrames);
  const Np = pre.n;
  const N = full.n;
  const Ns = N - Np;
  // attention order: the prefix's internal chunks, then the whole sequence's chunks of later shots
  const chunks: Chunk[] = [...pre.internal.chunks];
  let at = Np;
  for (const c of full.internal.chunks) {
    if (c.shot < first) continue;
    chunks.push({ ...c, start: at, end: at + c.end - c.start });
    at += c.end - c.start;
  }
  const table = tableFromChunks(chunks);
  const Cp = pre.internal.start.length;
  const C = table.start.length;
  // suffix rows: the captions of shots ≥ P, then their frames (internal order of the whole sequence)
  const textStart = (first + 1) * L;
  const Tp = pre.frameShot.length;
  const T = full.frameShot.length;
  const videoStart = full.nText + Tp * G * G;
  const pick = <A extends Float32Array | Int32Array>(a: A, width: number): A => {
    const head = a.slice(textStart * width, full.nText * width) as A;
    const tail = a.slice(videoStart * width) as A;
    const out = new (a.constructor as new (n: number) => A)(head.length + tail.length);
    out.set(head);
    out.set(tail, head.length);
    return out;
  };
  const nText = full.nText - textStart;
  const rows = buildRowState(
    eng,
    cfg,
    { pos: pick(full.pos, 3), cond: pick(full.cond, 1), nText, nVideo: Ns - nText },
    N,
    Np,
  );
  const qMap = new Int32Array(H * N);
  const kMap = new Int32Array(H * N);
  const vMap = new Int32Array(H * N);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      const s = n - Np; // suffix row
      qMap[h * N + n] = h * Ns + Math.max(0, s);
      kMap[h * N + n] = s < 0 ? h * Np + n : 2 * H * Np + h * Ns + s;
      vMap[h * N + n] = s < 0 ? H * Np + h * Np + n : 2 * H * Np + H * Ns + h * Ns + s;
    }
  }
  const descMap = new Int32Array(H * C);
  for (let h = 0; h < H; h++)
    for (let c = 0; c < C; c++) descMap[h * C + c] = c < Cp ? h * Cp + c : H * Cp + h * (C - Cp) + c - Cp;
  const up = (a: Int32Array, label: string): Tensor => eng.upload(a, [a.length], `dit.prefix.${label}`);
  return {
    first,
    n: N,
    nPrefix: Np,
    nSuffix: Ns,
    cPrefix: Cp,
    framesPrefix: Tp,
    frames: T,
    table,
    rows,
    textStart,
    chunkStart: up(table.start, 'chunk-start'),
    chunkKind: up(table.kind, 'chunk-kind'),
    chunkShot: up(table.shot, 'chunk-shot'),
    suffixStart: up(table.start.slice(Cp), 'suffix-start'),
    suffixEnd: up(table.end.slice(Cp), 'suffix-end'),
    frameIdx: up(
      Int32Array.from({ length: T - Tp }, (_, f) => Tp + f),
      'frame-idx',
    ),
    qMap: up(qMap, 'q-map'),
    kMap: up(kMap, 'k-map'),
    vMap: up(vMap, 'v-map'),
    descMap: up(descMap, 'desc-map'),
  };
}

export function disposePrefixLayout(l: PrefixLayout): void {
  disposeRows(l.rows);
  for (const t of [
    l.chunkStart,
    l.chunkKind,
    l.chunkShot,
    l.suffixStart,
    l.suffixEnd,
    l.frameIdx,
    l.qMap,
    l.kMap,
    l.vMap,
    l.descMap,
  ])
    t.dispose();
}

export function disposePrefixCache(c: PrefixCache): void {
  for (const l of c.layers) {
    l.kv.dispose();
    l.desc.dispose();
  }
  c.routed.dispose();
}

/** Bytes of one conditioning's PrefixCache (f32/i32 = 4). */
export function prefixCacheBytes(
  cfg: Pick<ModelConfig, 'heads' | 'headDim' | 'depth'>,
  N: number,
  C: number,
  K: number,
): number {
  const { heads: H, headDim: D, depth } = cfg;
  return 4 * (depth * (2 * H * N * D + H * C * D) + H * N * Math.max(1, K));
}

/** What a cached generation reused: its prefix shots came from an earlier generation (hit) or were computed now. */
export interface PrefixEntry {
  key: string;
  layout: PrefixLayout;
  /** The conditional call's cache, and the unconditional one's (guidance ≠ 1). */
  cond: PrefixCache;
  uncond: PrefixCache | null;
  bytes: number;
}

/**
 * At most one prefix, kept across generations while its key (the content of everything before
 * the first sampled shot, and the options that shape it) is asked for again. Owned by a MocDiT,
 * so a model change or a lost device (a new MocDiT) drops it.
 */
export class ShotCache {
  private entry: PrefixEntry | null = null;

  /** The entry under `key`, or null (the held one, if any, is kept until `set`). */
  get(key: string): PrefixEntry | null {
    return this.entry?.key === key ? this.entry : null;
  }

  /** Holds `e` instead of the current entry, which is freed. */
  set(e: PrefixEntry): void {
    this.clear();
    this.entry = e;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.entry?.bytes ?? 0;
  }

  clear(): void {
    if (!this.entry) return;
    disposePrefixLayout(this.entry.layout);
    disposePrefixCache(this.entry.cond);
    if (this.entry.uncond) disposePrefixCache(this.entry.uncond);
    this.entry = null;
  }
}

/** FNV-1a over the bits of floats and ints: the content part of a cache key. */
export function contentHash(parts: ReadonlyArray<Float32Array | Int32Array>): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const p of parts) {
    const w = new Uint32Array(p.buffer, p.byteOffset, p.length);
    for (let i = 0; i < w.length; i++) {
      h1 = Math.imul(h1 ^ w[i], 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ w[i] ^ (i & 0xffff), 0x85ebca6b) >>> 0;
    }
    h1 = Math.imul(h1 ^ p.length, 0x01000193) >>> 0;
  }
  return `${h1.toString(16)}${h2.toString(16)}`;
}
