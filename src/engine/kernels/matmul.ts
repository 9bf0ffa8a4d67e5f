/**
 * Matrix multiply with optional bias: out[M,N] = a[M,K] · B + bias[N], where B is b[K,N] or, with
 * `transB`, b[N,K]ᵀ (the PyTorch Linear weight layout). Two kernels, picked by the config's kind:
 * - tiled (GPUs): through workgroup memory, each invocation accumulating a TM×TN register
 *   micro-tile in f32. WGSL: shaders/matmul.wgsl.
 * - registers (SwiftShader, WebGPU on the CPU): no workgroup memory and no barriers, each
 *   invocation accumulating a 16×16 tile in named registers. WGSL: shaders/matmul-registers.wgsl.
 *
 * `a` may have leading batch dimensions: [..., K] is treated as [M, K] with M the product of the
 * leading dimensions, and out gets shape [..., N].
 */
import registersSource from '../../../shaders/matmul-registers.wgsl?raw';
import source from '../../../shaders/matmul.wgsl?raw';
import { grid2d, packParams, type Engine } from '../engine.ts';
import { ShapeError, UnsupportedError } from '../errors.ts';
import { isSwiftShader } from './adapters.ts';
import { wgsl } from '../shaders.ts';
import type { Tensor } from '../tensor.ts';

/** Tiled kernel: a WGX×WGY workgroup computes a (WGY·TM)×(WGX·TN) tile, K in BK-deep slices. */
export interface TiledMatmulConfig {
  kind?: 'tiled';
  wgx: number;
  wgy: number;
  tm: number;
  tn: number;
  bk: number;
  /** Tile rows per band of the workgroup-to-tile mapping (L2 reuse); 1 = plain row order. */
  groupM: number;
}

/**
 * Register kernel: each invocation computes a (4·rb)×(4·cb) tile of out as rb×cb blocks of 4×4,
 * `wg` invocations per workgroup.
 */
export interface RegisterMatmulConfig {
  kind: 'registers';
  wg: number;
  /** 4×4 blocks per invocation down M, 1 to 4. */
  rb: number;
  /** 4×4 blocks per invocation across N, 1 to 4. */
  cb: number;
}

export type MatmulConfig = TiledMatmulConfig | RegisterMatmulConfig;

/** Named candidate configs; `bench kernels --tune` times each on the device. */
export const MATMUL_CONFIGS = {
  '128x128k16': { wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 16, groupM: 8 },
  '128x128k8': { wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 8, groupM: 8 },
  '128x64k16': { wgx: 8, wgy: 16, tm: 8, tn: 8, bk: 16, groupM: 8 },
  '64x128k16': { wgx: 16, wgy: 8, tm: 8, tn: 8, bk: 16, groupM: 8 },
  '128x128k16-t8x4': { wgx: 32, wgy: 16, tm: 8, tn: 4, bk: 16, groupM: 8 },
  '256x128k8': { wgx: 16, wgy: 32, tm: 8, tn: 8, bk: 8, groupM: 8 },
  '64x64k16-t8x8': { wgx: 8, wgy: 8, tm: 8, tn: 8, bk: 16, groupM: 8 },
  '64x64k16': { wgx: 16, wgy: 16, tm: 4, tn: 4, bk: 16, groupM: 8 },
  '128x128k16-g1': { wgx: 16, wgy: 16, tm: 8, tn: 8, bk: 16, groupM: 1 },
  regs16x16: { kind: 'registers', wg: 16, rb: 4, cb: 4 },
  'regs16x16-wg64': { kind: 'registers', wg: 64, rb: 4, cb: 4 },
  regs8x16: { kind: 'registers', wg: 16, rb: 2, cb: 4 },
} as const satisfies Record<string, MatmulConfig>;

export type MatmulConfigName = keyof typeof MATMUL_CONFIGS;

export interface MatmulOptions {
  bias?: Tensor;
  /** b is [N, K] (out = a · bᵀ) instead of [K, N]. */
  transB?: boolean;
  out?: Tensor;
  /** Tile geometry; by default chosen by `matmulConfig` from the problem size. */
  config?: MatmulConfig;
}

/**
 * The large-problem config per adapter vendor (WebGPU's adapter.info.vendor), from
 * `bench kernels --tune` on that hardware; others get '128x128k16'.
 */
const VENDOR_DEFAULTS: Record<string, MatmulConfigName> = {
  nvidia: '64x128k16', // bench kernels --tune on an H100 (Dawn/Vulkan): 37.7 TFLOP/s a·B, 36.9 a·Bᵀ at 4096³
};

/**
 * SwiftShader's config, whatever its vendor string: at 256³ every tiled config ran at 0.02–0.11
 * GFLOP/s there (barriers, workgroup memory), this one at 2.6–3.7 (`bench kernels --quick
 * --tune`; docs/BENCHMARKS.md, SwiftShader).
 */
const SWIFTSHADER_DEFAULT: MatmulConfigName = 'regs16x16';

const preferred = new WeakMap<Engine, MatmulConfig>();

/** Makes `config` the large-problem default on this engine (e.g. the winner of a tuning run). */
export function setMatmulConfig(eng: Engine, config: MatmulConfig): void {
  checkConfig(eng, config);
  preferred.set(eng, config);
}

/**
 * The config used when none is given: the large-problem config (setMatmulConfig's, else
 * SwiftShader's or the vendor's, else 128×128 tiles of 8×8 per invocation). A tiled config is
 * used when it yields at least 256 tiles, enough to fill a large GPU, and 64×64 tiles of 4×4 per
 * invocation for smaller problems; a register config's tile shrinks to at most M×N (rounded up
 * to 4×4 blocks).
 */
export function matmulConfig(eng: Engine, M: number, N: number): MatmulConfig {
  const big = preferred.get(eng) ?? largeDefault(eng);
  if (big.kind === 'registers')
    return { ...big, rb: Math.min(big.rb, Math.ceil(M / 4)), cb: Math.min(big.cb, Math.ceil(N / 4)) };
  const tiles = Math.ceil(M / (big.wgy * big.tm)) * Math.ceil(N / (big.wgx * big.tn));
  return tiles >= 256 ? big : MATMUL_CONFIGS['64x64k16'];
}

/** SwiftShader's or the vendor's config, or the first of 128x128k16, 128x128k8 the adapter can hold. */
function largeDefault(eng: Engine): MatmulConfig {
  if (isSwiftShader(eng.adapter)) return MATMUL_CONFIGS[SWIFTSHADER_DEFAULT];
  const names: MatmulConfigName[] = [VENDOR_DEFAULTS[eng.adapter.vendor] ?? '128x128k16', '128x128k16', '128x128k8'];
  for (const name of names) {
    if (fits(eng, MATMUL_CONFIGS[name])) return MATMUL_CONFIGS[name];
  }
  return MATMUL_CONFIGS['64x64k16']; // 16 KiB and 256 invocations: WebGPU's default limits
}

function fits(eng: Engine, c: MatmulConfig): boolean {
  try {
    checkConfig(eng, c);
    return true;
  } catch {
    return false;
  }
}

/** Workgroup memory a config needs, in bytes (tiled: two stages of both tiles, f32; registers: none). */
export function matmulWorkgroupBytes(c: MatmulConfig): number {
  if (c.kind === 'registers') return 0;
  return 2 * (c.wgy * c.tm + c.wgx * c.tn) * c.bk * 4;
}

/** One line: the tile, per-invocation tile, BK and groupM (tiled) or blocks and workgroup size. */
export function describeMatmulConfig(c: MatmulConfig): string {
  if (c.kind === 'registers') return `${4 * c.rb}×${4 * c.cb} per invocation in registers, ${c.wg} per workgroup`;
  return `${c.wgy * c.tm}×${c.wgx * c.tn}, ${c.tm}×${c.tn}, ${c.bk}, ${c.groupM}`;
}

/**
 * Refuses a config the shader cannot run or the adapter cannot hold, naming what is wrong.
 * @throws UnsupportedError
 */
export function checkConfig(eng: Engine, c: MatmulConfig): void {
  const bad = (why: string): never => {
    throw new UnsupportedError(`matmul config ${JSON.stringify(c)}: ${why}`);
  };
  const lim = eng.adapter.limits;
  if (c.kind === 'registers') {
    if (![c.wg, c.rb, c.cb].every((v) => Number.isInteger(v) && v >= 1)) bad('every field must be a positive integer');
    if (c.rb > 4 || c.cb > 4) bad('rb and cb must be at most 4');
    if (c.wg > lim.maxComputeInvocationsPerWorkgroup)
      bad(`${c.wg} invocations exceed the adapter's ${lim.maxComputeInvocationsPerWorkgroup}`);
    return;
  }
  if (![c.wgx, c.wgy, c.tm, c.tn, c.bk, c.groupM].every((v) => Number.isInteger(v) && v >= 1))
    bad('every field must be a positive integer');
  if (c.tm > 8) bad('tm must be at most 8');
  if (c.tn !== 4 && c.tn !== 8) bad('tn must be 4 or 8');
  if (![4, 8, 16, 32].includes(c.bk)) bad('bk must be 4, 8, 16 or 32');
  const nt = c.wgx * c.wgy;
  const aLoads = Math.ceil((c.wgy * c.tm * c.bk) / 4 / nt);
  const bLoads = Math.ceil((c.wgx * c.tn * c.bk) / 4 / nt);
  if (aLoads > 4 || bLoads > 4) bad(`a slice needs ${Math.max(aLoads, bLoads)} vec4 loads per invocation (at most 4)`);
  if (nt > lim.maxComputeInvocationsPerWorkgroup)
    bad(`${nt} invocations exceed the adapter's ${lim.maxComputeInvocationsPerWorkgroup}`);
  const bytes = matmulWorkgroupBytes(c);
  if (bytes > lim.maxComputeWorkgroupStorageSize)
    bad(`${bytes} bytes of workgroup memory exceed the adapter's ${lim.maxComputeWorkgroupStorageSize}`);
}

/**
 * out = a · B (+ bias). Returns `opts.out` or a new tensor of shape [...a.shape[:-1], N].
 * @throws ShapeError when the shapes or dtypes do not agree (the message names the input);
 *   UnsupportedError for f16 without `shader-f16`, or a config the adapter cannot run.
 */
export async function matmul(eng: Engine, a: Tensor, b: Tensor, opts: MatmulOptions = {}): Promise<Tensor> {
  const transB = opts.transB ?? false;
  if (a.shape.length < 1) throw new ShapeError('matmul: a must have at least one dimension');
  if (b.shape.length !== 2) throw new ShapeError(`matmul: b must be 2D, got [${b.shape.join(', ')}]`);
  const K = a.shape[a.shape.length - 1];
  const M = K === 0 ? 0 : a.size / K;
  const [bRows, bCols] = b.shape;
  const N = transB ? bRows : bCols;
  const kb = transB ? bCols : bRows;
  if (K < 1) throw new ShapeError(`matmul: a [${a.shape.join(', ')}] has an empty inner dimension`);
  if (kb !== K) {
    throw new ShapeError(
      `matmul: a [${a.shape.join(', ')}] and b [${b.shape.join(', ')}]${transB ? ' (transposed)' : ''} disagree on K (${K} vs ${kb})`,
    );
  }
  if (a.dtype !== 'f32' && a.dtype !== 'f16')
    throw new ShapeError(`matmul: a has dtype ${a.dtype}; expected f32 or f16`);
  if (b.dtype !== a.dtype) throw new ShapeError(`matmul: b has dtype ${b.dtype} but a has ${a.dtype}`);
  if (a.dtype === 'f16' && !eng.features.f16)
    throw new UnsupportedError('matmul: f16 tensors need the shader-f16 feature, which this adapter lacks');
  const { bias } = opts;
  if (bias && (bias.size !== N || bias.dtype !== a.dtype)) {
    throw new ShapeError(`matmul: bias [${bias.shape.join(', ')}] ${bias.dtype} must have ${N} elements of ${a.dtype}`);
  }
  const outShape = [...a.shape.slice(0, -1), N];
  const out = opts.out ?? eng.tensor(outShape, a.dtype, 'matmul.out');
  if (out.size !== M * N || out.dtype !== a.dtype) {
    throw new ShapeError(
      `matmul: out [${out.shape.join(', ')}] ${out.dtype} must hold ${M}×${N} elements of ${a.dtype}`,
    );
  }

  const c = opts.config ?? matmulConfig(eng, M, N);
  if (opts.config) checkConfig(eng, c);
  const storage = a.dtype === 'f16' ? 'f16' : 'f32';
  const bindings = [a, b, bias ?? b, out];
  const maxGroups = eng.adapter.limits.maxComputeWorkgroupsPerDimension;
  if (c.kind === 'registers') {
    const constants = { WG: c.wg, RB: c.rb, CB: c.cb, TRANS_B: transB ? 1 : 0, HAS_BIAS: bias ? 1 : 0 };
    const pipeline = await eng.pipeline('matmul-registers', wgsl(registersSource, storage), constants, storage);
    const tilesN = Math.ceil(N / (4 * c.cb));
    const tiles = tilesN * Math.ceil(M / (4 * c.rb));
    const params = packParams([
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', tilesN],
      ['u32', tiles],
    ]);
    eng.dispatch({ pipeline, label: 'matmul', params, bindings, groups: grid2d(Math.ceil(tiles / c.wg), maxGroups) });
    return out;
  }
  const constants = {
    WGX: c.wgx,
    WGY: c.wgy,
    TM: c.tm,
    TN: c.tn,
    BK: c.bk,
    GROUP_M: c.groupM,
    TRANS_B: transB ? 1 : 0,
    HAS_BIAS: bias ? 1 : 0,
    VEC_A: K % 4 === 0 ? 1 : 0,
    VEC_B: (transB ? K : N) % 4 === 0 ? 1 : 0,
  };
  const pipeline = await eng.pipeline('matmul', wgsl(source, storage), constants, storage);
  const tilesM = Math.ceil(M / (c.wgy * c.tm));
  const tilesN = Math.ceil(N / (c.wgx * c.tn));
  eng.dispatch({
    pipeline,
    label: 'matmul',
    params: packParams([
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', tilesM],
      ['u32', tilesN],
    ]),
    bindings,
    groups: grid2d(tilesM * tilesN, maxGroups),
  });
  return out;
}

/** Floating-point operations of one matmul (multiply and add counted separately). */
export function matmulFlops(M: number, N: number, K: number): number {
  return 2 * M * N * K;
}

/** CPU twin: the same product with float64 accumulation, rounded to f32 at the end. */
export function matmulCpu(
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | null,
  M: number,
  N: number,
  K: number,
  transB: boolean,
): Float32Array {
  if (a.length < M * K || b.length < K * N || (bias && bias.length < N))
    throw new ShapeError(`matmulCpu: inputs too short for M=${M} N=${N} K=${K}`);
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      if (transB) for (let k = 0; k < K; k++) s += a[m * K + k] * b[n * K + k];
      else for (let k = 0; k < K; k++) s += a[m * K + k] * b[k * N + n];
      out[m * N + n] = s;
    }
  }
  return out;
}
