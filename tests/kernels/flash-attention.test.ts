import { describe, expect, it } from 'vitest';
import {
  FLASH_TILE_CONFIGS,
  flashAttention,
  flashAttentionCpu,
  flashTile,
  flashTileProblem,
  type FlashTile,
} from '../../src/engine/kernels/flash-attention.ts';
import { UnsupportedError } from '../../src/engine/errors.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const TOL = { f32: { atol: 2e-5, rtol: 2e-4 }, f16: { atol: 2e-3, rtol: 2e-2 } };

async function check(
  H: number,
  N: number,
  D: number,
  opts: { tile?: FlashTile; scale?: number; spread?: number; seed?: number } = {},
): Promise<void> {
  const eng = await testEngine();
  for (const st of storageTypes(eng)) {
    const rng = new Rng(opts.seed ?? H * 1000 + N * 7 + D);
    const spread = opts.spread ?? 1;
    const q = roundAs(st, rng.normals(H * N * D, spread));
    const k = roundAs(st, rng.normals(H * N * D, spread));
    const v = roundAs(st, rng.normals(H * N * D));
    const shape = [H, N, D];
    const [tq, tk, tv] = [q, k, v].map((x, i) => uploadAs(eng, st, x, shape, `test.${'qkv'[i]}`));
    const out = poisonedAs(eng, st, shape, 'test.out');
    await flashAttention(eng, tq, tk, tv, { out, tile: opts.tile, scale: opts.scale });
    const got = await readAsF32(eng, out);
    const ref = flashAttentionCpu(q, k, v, H, N, D, opts.scale);
    const tag = `flash ${st} H=${H} N=${N} D=${D}${opts.tile ? ` tile ${JSON.stringify(opts.tile)}` : ''}`;
    assertClose(tag, got, ref, TOL[st]);
    [tq, tk, tv, out].forEach((t) => t.dispose());
  }
}

describe('flash attention', () => {
  for (const D of [32, 64, 128]) {
    for (const [H, N] of [
      [1, 1],
      [2, 7],
      [1, 33],
      [3, 257],
    ]) {
      it(`H=${H} N=${N} D=${D}, default tile`, () => check(H, N, D));
    }
  }
  it('N=1000, D=64, H=2', () => check(2, 1000, 64));
  it('N=600, D=128', () => check(1, 600, 128));

  // Every named tile at D=32, where this adapter holds them all (the H100's default among them).
  // Each tile is its own pipeline, and SwiftShader takes seconds to compile one: keep the list short.
  for (const [name, tile] of Object.entries(FLASH_TILE_CONFIGS)) {
    it(`tile ${name}, D=32, N=131`, async () => {
      const eng = await testEngine();
      expect(flashTileProblem(eng, 32, tile)).toBeNull();
      await check(2, 131, 32, { tile });
    });
  }
  it('a custom tile: bq 16, bk 8, ncol 4, D=32', () => check(1, 77, 32, { tile: { bq: 16, bk: 8, ncol: 4 } }));

  it('large scores (peaked softmax) and a custom scale', () => check(2, 300, 64, { spread: 4, scale: 0.3, seed: 99 }));

  it('picks a tile that fits', async () => {
    const eng = await testEngine();
    for (const D of [32, 64, 128]) expect(flashTileProblem(eng, D, flashTile(eng, D))).toBeNull();
  });

  it('refuses an unsupported head dim, naming it and the supported ones', async () => {
    const eng = await testEngine();
    const t = eng.tensor([1, 4, 48]);
    await expect(flashAttention(eng, t, t, t)).rejects.toThrow(UnsupportedError);
    await expect(flashAttention(eng, t, t, t)).rejects.toThrow(/D=48.*32, 64, 128/);
    t.dispose();
  });

  it('refuses mismatched shapes', async () => {
    const eng = await testEngine();
    const a = eng.tensor([1, 4, 32]);
    const b = eng.tensor([1, 5, 32]);
    await expect(flashAttention(eng, a, b, a)).rejects.toThrow(/k is \[1, 5, 32\]/);
    [a, b].forEach((t) => t.dispose());
  });
});
