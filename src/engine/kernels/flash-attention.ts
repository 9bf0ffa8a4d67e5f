/**
 * Dense flash attention: out[h,i] = softmax(q[h,i]·k[h]ᵀ·scale)·v[h] for q, k, v, out [H, N, D],
 * one pass over the keys with an online softmax, key tiles staged in workgroup memory and
 * register-blocked score and output tiles. WGSL: shaders/flash-attention.wgsl on the key-tile
 * loop every attention kernel shares (shaders/moc-attention-core.wgsl; attentionSource builds them).
 *
 * Head dims 32, 64 and 128; any N ≥ 1. Storage f32, or f16 when the engine has `shader-f16`
 * (arithmetic is f32 either way). FLOPs: 4·N²·D·H.
 */
import coreSource from '../../../shaders/moc-attention-core.wgsl?raw';
import source from '../../../shaders/flash-attention.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import { wgsl, type StorageType } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

/** Head dims the kernel is built for. */
export const FLASH_HEAD_DIMS = [32, 64, 128] as const;

/**
 * Tile geometry: a workgroup takes `bq` queries against key tiles of `bk` keys, with
 * (bq/4)·ncol invocations; each holds 4 query rows, bk/ncol scores and D/ncol output columns.
 */
export interface FlashTile {
  bq: number;
  bk: number;
  ncol: number;
}

/**
 * Register-tile bounds of the attention core: query rows per invocation (TQ, fixed: P packs four
 * rows as a vec4), keys per invocation per tile, output vec4 columns per invocation, vec4 loads of
 * K (and V) per invocation per tile. Emitted into the WGSL as `const`s by attentionSource, and
 * what flashTileProblem checks tiles against.
 */
const TILE_BOUNDS = { TQ: 4, TK_MAX: 8, TD4_MAX: 4, PF_MAX: 16 } as const;
const { TQ, TK_MAX, TD4_MAX, PF_MAX } = TILE_BOUNDS;

/** WGSL of an attention kernel: the tile bounds, the shared key-tile loop, then the design's file. */
export function attentionSource(design: string, storage: StorageType): string {
  const bounds = Object.entries(TILE_BOUNDS)
    .map(([name, n]) => `const ${name}: u32 = ${n}u;`)
    .join('\n');
  return wgsl(`${bounds}\n${coreSource}\n${design}`, storage);
}

/**
 * Named tiles. The first four are the defaults, in order of preference (`flashTile` takes the
 * first the adapter holds: 64x32/8 on a 48 KiB GPU at D ≤ 64, 32x32/8 within SwiftShader's 32 KiB);
 * the rest are candidates for tuning on a large GPU (bigger register tiles, fewer invocations).
 */
export const FLASH_TILE_CONFIGS = {
  '64x32/8': { bq: 64, bk: 32, ncol: 8 },
  '32x32/8': { bq: 32, bk: 32, ncol: 8 },
  '32x16/8': { bq: 32, bk: 16, ncol: 8 },
  '16x16/8': { bq: 16, bk: 16, ncol: 8 },
  '32x64/8': { bq: 32, bk: 64, ncol: 8 }, // scores 4×8 per invocation
  '64x32/4': { bq: 64, bk: 32, ncol: 4 }, // scores 4×8, output 4×16 (D=64)
  '64x16/4': { bq: 64, bk: 16, ncol: 4 }, // output 4×16 (D=64)
} as const satisfies Record<string, FlashTile>;

export type FlashTileName = keyof typeof FLASH_TILE_CONFIGS;

/** The default tiles in order of preference. */
export const FLASH_TILES: readonly FlashTile[] = [
  FLASH_TILE_CONFIGS['64x32/8'],
  FLASH_TILE_CONFIGS['32x32/8'],
  FLASH_TILE_CONFIGS['32x16/8'],
  FLASH_TILE_CONFIGS['16x16/8'],
];

export interface FlashOptions {
  out?: Tensor;
  /** Softmax scale; 1/√D by default. */
  scale?: number;
  /** Tile geometry; by default the first of FLASH_TILES that fits the adapter. */
  tile?: FlashTile;
}

/** Workgroup memory of the core's arrays for a tile at head dim D, in bytes (u32 arrays padded to 16 as Dawn counts them). */
export function flashWorkgroupBytes(D: number, t: FlashTile): number {
  const ks = D / 4 + 1;
  const nrg = t.bq / TQ;
  const vec4s = t.bq * ks + Math.max(t.bk * ks, t.bk * (nrg + 1)) + t.bk * ks;
  return vec4s * 16 + t.bq * t.ncol * 4 + Math.ceil(t.bk / 4) * 16; // qs, kp, vs; part; keyu
}

/**
 * Why the kernel cannot run `t` at head dim D on this engine, or null when it can. `bytes` is the
 * workgroup memory needed (the MoC kernel, which shares the tile geometry, needs more).
 */
export function flashTileProblem(
  eng: Engine,
  D: number,
  t: FlashTile,
  bytes = flashWorkgroupBytes(D, t),
): string | null {
  const wg = (t.bq / TQ) * t.ncol;
  const d4 = D / 4;
  if (!Number.isInteger(t.bq / TQ) || t.bq < TQ) return `bq ${t.bq} is not a positive multiple of ${TQ}`;
  if (!Number.isInteger(t.bk / t.ncol) || t.bk / t.ncol > TK_MAX)
    return `bk/ncol = ${t.bk}/${t.ncol} must be an integer ≤ ${TK_MAX}`;
  if (!Number.isInteger(d4 / t.ncol) || d4 / t.ncol > TD4_MAX)
    return `D/4/ncol = ${d4}/${t.ncol} must be an integer ≤ ${TD4_MAX}`;
  if (Math.ceil((t.bk * d4) / wg) > PF_MAX)
    return `a tile of ${t.bk} keys needs more than ${PF_MAX} loads per invocation`;
  if (wg > eng.adapter.limits.maxComputeInvocationsPerWorkgroup) {
    return `${wg} invocations exceed this adapter's ${eng.adapter.limits.maxComputeInvocationsPerWorkgroup}`;
  }
  const max = eng.adapter.limits.maxComputeWorkgroupStorageSize;
  if (bytes > max) return `${bytes} bytes of workgroup memory exceed this adapter's ${max}`;
  return null;
}

/**
 * The default tile for head dim D: the first of FLASH_TILES the adapter can hold.
 * @throws UnsupportedError for a head dim outside FLASH_HEAD_DIMS or when no tile fits.
 */
export function flashTile(eng: Engine, D: number): FlashTile {
  checkHeadDim('flashAttention', D);
  const t = FLASH_TILES.find((c) => flashTileProblem(eng, D, c) === null);
  if (!t)
    throw new UnsupportedError(
      `flashAttention: no tile fits this adapter for D=${D} (${flashTileProblem(eng, D, FLASH_TILES[FLASH_TILES.length - 1])})`,
    );
  return t;
}

export function checkHeadDim(kernel: string, D: number): void {
  if (!(FLASH_HEAD_DIMS as readonly number[]).includes(D)) {
    throw new UnsupportedError(
      `${kernel}: head dim D=${D} is not supported (supported: ${FLASH_HEAD_DIMS.join(', ')})`,
    );
  }
}

/**
 * Checks q, k, v (and out) are [H, N, D] float tensors of one dtype; returns H, N, D.
 * @throws ShapeError for mismatched shapes or dtypes; UnsupportedError for D or f16 storage.
 */
export function checkQkv(
  eng: Engine,
  kernel: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out?: Tensor,
): [number, number, number] {
  if (q.shape.length !== 3) throw new ShapeError(`${kernel}: q must be [H, N, D], got [${q.shape.join(', ')}]`);
  const [H, N, D] = q.shape;
  for (const [name, t] of [
    ['k', k],
    ['v', v],
    ['out', out],
  ] as const) {
    if (!t) continue;
    if (t.shape.length !== 3 || t.shape[0] !== H || t.shape[1] !== N || t.shape[2] !== D) {
      throw new ShapeError(`${kernel}: ${name} is [${t.shape.join(', ')}], q is [${H}, ${N}, ${D}]`);
    }
    if (t.dtype !== q.dtype) throw new ShapeError(`${kernel}: ${name} is ${t.dtype}, q is ${q.dtype}`);
  }
  if (q.dtype !== 'f32' && q.dtype !== 'f16')
    throw new ShapeError(`${kernel}: q, k, v must be f32 or f16, got ${q.dtype}`);
  if (q.dtype === 'f16' && !eng.features.f16)
    throw new UnsupportedError(`${kernel}: f16 tensors need the shader-f16 feature, which this adapter lacks`);
  if (N < 1 || H < 1) throw new ShapeError(`${kernel}: H and N must be ≥ 1, got [${H}, ${N}, ${D}]`);
  checkHeadDim(kernel, D);
  return [H, N, D];
}

/**
 * Dense attention over q, k, v [H, N, D]; returns out [H, N, D] (opts.out if given).
 * @throws ShapeError (shapes, dtypes), UnsupportedError (head dim, f16 without shader-f16, a tile
 * the adapter cannot hold, a dispatch too large).
 */
export async function flashAttention(
  eng: Engine,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: FlashOptions = {},
): Promise<Tensor> {
  const [H, N, D] = checkQkv(eng, 'flashAttention', q, k, v, opts.out);
  const tile = opts.tile ?? flashTile(eng, D);
  const problem = flashTileProblem(eng, D, tile);
  if (problem) throw new UnsupportedError(`flashAttention: tile ${JSON.stringify(tile)} at D=${D}: ${problem}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const storage = q.dtype === 'f16' ? 'f16' : 'f32';
  const out = opts.out ?? eng.tensor([H, N, D], q.dtype, 'flash-attention.out');
  const pipeline = await eng.pipeline(
    'flash-attention',
    attentionSource(source, storage),
    { D, BQ: tile.bq, BK: tile.bk, NCOL: tile.ncol },
    storage,
  );
  const qtiles = Math.ceil(N / tile.bq);
  const groups = H * qtiles;
  eng.dispatch({
    pipeline,
    label: 'flash-attention',
    params: packParams([
      ['u32', N],
      ['u32', qtiles],
      ['u32', groups],
      ['f32', scale * Math.LOG2E],
      ['u32', 0], // range_off: no mandatory ranges
    ]),
    bindings: [q, k, v, out],
    groups: grid2d(groups, eng.adapter.limits.maxComputeWorkgroupsPerDimension),
  });
  return out;
}

/**
 * CPU twin: plain loops, float64 softmax and accumulation. q, k, v are [H, N, D] row-major.
 */
export function flashAttentionCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  H: number,
  N: number,
  D: number,
  scale = 1 / Math.sqrt(D),
): Float32Array {
  const row = attendRowCpu(q, k, v, N, D, scale);
  const out = new Float32Array(H * N * D);
  const all = [0, N];
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) row(out, h, i, all);
  }
  return out;
}

/**
 * The row step both CPU twins share: for head h and query i, float64 scores scale·q·k over the
 * key tokens of `spans` ([start, end) pairs, visited in order), a softmax over them and the
 * weighted sum of v, written to out[h, i, :]. q, k, v, out are [H, N, D] row-major.
 */
export function attendRowCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  N: number,
  D: number,
  scale: number,
) {
  const s = new Float64Array(N);
  const acc = new Float64Array(D);
  return (out: Float32Array, h: number, i: number, spans: readonly number[]): void => {
    const qo = (h * N + i) * D;
    let max = -Infinity;
    for (let r = 0; r < spans.length; r += 2) {
      for (let t = spans[r]; t < spans[r + 1]; t++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qo + d] * k[(h * N + t) * D + d];
        s[t] = dot * scale;
        if (s[t] > max) max = s[t];
      }
    }
    acc.fill(0);
    let sum = 0;
    for (let r = 0; r < spans.length; r += 2) {
      for (let t = spans[r]; t < spans[r + 1]; t++) {
        const w = Math.exp(s[t] - max);
        sum += w;
        for (let d = 0; d < D; d++) acc[d] += w * v[(h * N + t) * D + d];
      }
    }
    for (let d = 0; d < D; d++) out[qo + d] = acc[d] / sum;
  };
}
