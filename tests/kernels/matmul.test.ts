import { describe, expect, it } from 'vitest';
import type { AdapterSummary, Engine } from '../../src/engine/engine.ts';
import { isSwiftShader } from '../../src/engine/kernels/adapters.ts';
import {
  MATMUL_CONFIGS,
  checkConfig,
  matmul,
  matmulConfig,
  matmulCpu,
  type MatmulConfig,
} from '../../src/engine/kernels/matmul.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose, fromHalf, toHalf } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';

interface Case {
  M: number;
  N: number;
  K: number;
  transB: boolean;
  bias: boolean;
  config?: MatmulConfig;
}

/** Runs one GPU matmul on seeded inputs (poisoned output) and compares it with matmulCpu. */
async function check(eng: Engine, c: Case, storage: 'f32' | 'f16' = 'f32'): Promise<void> {
  const { M, N, K, transB } = c;
  const rng = new Rng(M * 7919 + N * 104729 + K * 13 + (transB ? 1 : 0));
  let a = rng.normals(M * K);
  let b = rng.normals(K * N, 1 / Math.sqrt(K));
  let bias = c.bias ? rng.normals(N) : null;
  if (storage === 'f16') {
    // the reference sees the same rounded inputs the GPU does
    a = fromHalf(toHalf(a));
    b = fromHalf(toHalf(b));
    bias = bias && fromHalf(toHalf(bias));
  }
  const up = (x: Float32Array, shape: number[], label: string) =>
    storage === 'f16' ? eng.upload(toHalf(x), shape, label, 'f16') : eng.upload(x, shape, label);
  const ta = up(a, [M, K], 'test.a');
  const tb = up(b, transB ? [N, K] : [K, N], 'test.b');
  const tbias = bias ? up(bias, [N], 'test.bias') : undefined;
  const out = eng.tensor([M, N], storage, 'test.out');
  eng.poison(out);
  const got = await matmul(eng, ta, tb, { bias: tbias, transB, out, config: c.config });
  expect(got).toBe(out);
  const raw = await eng.read(out);
  const res = storage === 'f16' ? fromHalf(raw as Uint16Array) : (raw as Float32Array);
  const ref = matmulCpu(a, b, bias, M, N, K, transB);
  const tol = storage === 'f16' ? { atol: 2e-2, rtol: 1e-2 } : { atol: 1e-4, rtol: 1e-4 };
  const name = `matmul ${storage} M=${M} N=${N} K=${K}${transB ? ' transB' : ''}${bias ? ' bias' : ''}`;
  assertClose(name, res, ref, tol);
  [ta, tb, tbias, out].forEach((t) => t?.dispose());
}

const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [7, 5, 3],
  [1, 257, 64],
  [257, 7, 129],
  [33, 65, 17],
  [64, 64, 64],
  [130, 258, 260],
];

describe('matmul CPU twin', () => {
  it('matches a hand-computed product, with and without transB and bias', () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
    const b = Float32Array.from([1, 0, 0, 1, 1, 1]); // [3, 2]
    expect([...matmulCpu(a, b, null, 2, 2, 3, false)]).toEqual([4, 5, 10, 11]);
    const bt = Float32Array.from([1, 0, 1, 0, 1, 1]); // the same B as [2, 3]
    expect([...matmulCpu(a, bt, Float32Array.from([10, 20]), 2, 2, 3, true)]).toEqual([14, 25, 20, 31]);
  });
});

/** An engine whose adapter claims to be `adapter` (for the config choice only; never dispatches). */
function posing(eng: Engine, adapter: Partial<AdapterSummary>): Engine {
  return { adapter: { ...eng.adapter, ...adapter } } as Engine;
}

const SWIFTSHADER = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: 'swiftshader-device-subzero-',
  description: 'SwiftShader driver 5.0.0',
};
const H100 = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' };

describe('matmul kernel', () => {
  // The adapter's default config, and on SwiftShader (which defaults to the register kernel)
  // also the tiled kernel that GPUs get for these sizes.
  for (const [M, N, K] of SHAPES) {
    for (const transB of [false, true]) {
      const bias = (M + N + K + (transB ? 1 : 0)) % 2 === 0;
      it(`M=${M} N=${N} K=${K}${transB ? ' transB' : ''}${bias ? ' bias' : ''} (default config)`, async () => {
        const eng = await testEngine();
        for (const storage of storageTypes(eng)) await check(eng, { M, N, K, transB, bias }, storage);
        if (isSwiftShader(eng.adapter))
          await check(eng, { M, N, K, transB, bias, config: matmulConfig(posing(eng, H100), M, N) });
      });
    }
  }

  // The register kernel: every block count on ragged edges (M, N not multiples of the tile, K
  // not a multiple of 4, K < 4), both layouts, with and without bias; one config per test.
  const registerCases: Array<[string, MatmulConfig]> = [
    ['regs16x16', MATMUL_CONFIGS.regs16x16],
    ['regs16x16-wg64', MATMUL_CONFIGS['regs16x16-wg64']],
    ['regs8x16', MATMUL_CONFIGS.regs8x16],
    ['1×3 blocks, 7 per workgroup', { kind: 'registers', wg: 7, rb: 1, cb: 3 }],
    ['3×1 blocks', { kind: 'registers', wg: 16, rb: 3, cb: 1 }],
  ];
  for (const [name, config] of registerCases) {
    it(`register config ${name}: M=37 N=45 K=41 transB bias, M=33 N=19 K=3, M=1 N=65 K=130 transB`, async () => {
      const eng = await testEngine();
      for (const storage of storageTypes(eng)) {
        await check(eng, { M: 37, N: 45, K: 41, transB: true, bias: true, config }, storage);
        await check(eng, { M: 33, N: 19, K: 3, transB: false, bias: false, config }, storage);
        await check(eng, { M: 1, N: 65, K: 130, transB: true, bias: false, config }, storage);
      }
    });
  }

  // Tile geometries, both layouts, on ragged edges and several K slices: aligned rows (vec4 loads)
  // for a · bᵀ + bias, unaligned rows (element loads) for a · B. By default the large default,
  // BK = 8, WGX ≠ WGY, and a slice smaller than the workgroup (partial loads); every candidate
  // with MOC_MATMUL_ALL_CONFIGS=1 (slow on SwiftShader; `bench kernels --tune` also spot-checks
  // each on the device). Configs this adapter cannot hold are skipped, saying why.
  const configs: Record<string, MatmulConfig> = process.env.MOC_MATMUL_ALL_CONFIGS
    ? { ...MATMUL_CONFIGS }
    : {
        '128x128k16': MATMUL_CONFIGS['128x128k16'],
        '128x128k8': MATMUL_CONFIGS['128x128k8'],
        '128x64k16': MATMUL_CONFIGS['128x64k16'],
      };
  configs['64x64k8 (partial loads)'] = { wgx: 16, wgy: 16, tm: 4, tn: 4, bk: 8, groupM: 3 };
  for (const [name, config] of Object.entries(configs)) {
    it(`config ${name}: M=129 N=136 K=40 transB bias, and M=67 N=131 K=37`, async (ctx) => {
      const eng = await testEngine();
      try {
        checkConfig(eng, config);
      } catch (e) {
        ctx.skip(`${(e as Error).message}`);
      }
      await check(eng, { M: 129, N: 136, K: 40, transB: true, bias: true, config });
      await check(eng, { M: 67, N: 131, K: 37, transB: false, bias: false, config });
    });
  }

  it('picks per adapter: NVIDIA 64×128 tiles, others 128×128, 64×64 for small problems', async () => {
    const eng = await testEngine();
    expect(matmulConfig(posing(eng, H100), 4096, 4096)).toEqual(MATMUL_CONFIGS['64x128k16']);
    expect(matmulConfig(posing(eng, H100), 64, 64)).toEqual(MATMUL_CONFIGS['64x64k16']);
    const other = posing(eng, { vendor: 'amd', architecture: 'rdna-3', device: '', description: '' });
    expect(matmulConfig(other, 4096, 4096)).toEqual(MATMUL_CONFIGS['128x128k16']);
    expect(matmulConfig(other, 64, 64)).toEqual(MATMUL_CONFIGS['64x64k16']);
  });

  it('picks the register kernel on SwiftShader, its tile shrunk to small problems', async () => {
    const eng = await testEngine();
    const sw = posing(eng, SWIFTSHADER);
    expect(isSwiftShader(sw.adapter)).toBe(true);
    expect(isSwiftShader(posing(eng, H100).adapter)).toBe(false);
    expect(matmulConfig(sw, 4096, 4096)).toEqual(MATMUL_CONFIGS.regs16x16);
    expect(matmulConfig(sw, 256, 192)).toEqual(MATMUL_CONFIGS.regs16x16);
    expect(matmulConfig(sw, 3, 1152)).toEqual({ ...MATMUL_CONFIGS.regs16x16, rb: 1 });
    expect(matmulConfig(sw, 9, 5)).toEqual({ ...MATMUL_CONFIGS.regs16x16, rb: 3, cb: 2 });
  });

  it('treats leading dimensions of a as batch and returns [..., N]', async () => {
    const eng = await testEngine();
    const rng = new Rng(5);
    const a = rng.normals(2 * 3 * 8);
    const b = rng.normals(5 * 8);
    const ta = eng.upload(a, [2, 3, 8]);
    const tb = eng.upload(b, [5, 8]);
    const out = await matmul(eng, ta, tb, { transB: true });
    expect(out.shape).toEqual([2, 3, 5]);
    assertClose('batched matmul', await eng.read(out), matmulCpu(a, b, null, 6, 5, 8, true), {
      atol: 1e-5,
      rtol: 1e-5,
    });
    [ta, tb, out].forEach((t) => t.dispose());
  });

  it('refuses mismatched shapes, dtypes and configs, naming the input', async () => {
    const eng = await testEngine();
    const a = eng.upload(new Float32Array(12), [3, 4]);
    const b = eng.upload(new Float32Array(10), [5, 2]);
    const bias = eng.upload(new Float32Array(3), [3]);
    await expect(matmul(eng, a, b)).rejects.toThrow(/disagree on K \(4 vs 5\)/);
    const b2 = eng.upload(new Float32Array(8), [4, 2]);
    await expect(matmul(eng, a, b2, { bias })).rejects.toThrow(/bias \[3\] f32 must have 2 elements/);
    const out = eng.tensor([3, 3]);
    await expect(matmul(eng, a, b2, { out })).rejects.toThrow(/out \[3, 3\] f32 must hold 3×2/);
    const bad = { ...MATMUL_CONFIGS['64x64k16'], tn: 3 };
    await expect(matmul(eng, a, b2, { config: bad })).rejects.toThrow(/tn must be 4 or 8/);
    await expect(matmul(eng, a, b2, { config: { ...MATMUL_CONFIGS.regs16x16, cb: 5 } })).rejects.toThrow(
      /rb and cb must be at most 4/,
    );
    const i = eng.upload(new Int32Array(8), [4, 2]);
    await expect(matmul(eng, a, i)).rejects.toThrow(/b has dtype i32/);
    [a, b, bias, b2, out, i].forEach((t) => t.dispose());
  });
});
