import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/engine/errors.ts';
import {
  patchify,
  patchifyCpu,
  tokenShape,
  unpatchify,
  unpatchifyCpu,
  type FrameShape,
} from '../../src/engine/kernels/patchify.ts';
import { Rng } from '../../src/engine/random.ts';
import { assertClose } from '../helpers/compare.ts';
import { storageTypes, testEngine } from '../helpers/gpu.ts';
import { poisonedAs, readAsF32, roundAs, uploadAs } from '../helpers/storage.ts';

const eng = await testEngine();
const EXACT = { atol: 0, rtol: 0 }; // a permutation: every value must arrive unchanged

const CASES: Array<[FrameShape, number]> = [
  [[1, 1, 1, 1], 1],
  [[1, 3, 4, 4], 2],
  [[2, 3, 8, 12], 4],
  [[3, 4, 28, 20], 4],
  [[7, 3, 64, 64], 4],
  [[1, 1, 7, 7], 7],
  [[2, 3, 9, 6], 3],
];

for (const st of ['f32', 'f16'] as const) {
  describe.skipIf(!storageTypes(eng).includes(st))(`patchify kernels (${st})`, () => {
    CASES.forEach(([shape, patch], k) => {
      const name = `frames [${shape.join(', ')}] patch ${patch}`;
      it(`patchify, then unpatchify back, ${name}`, async () => {
        const frames = roundAs(st, new Rng(k + 1).normals(shape[0] * shape[1] * shape[2] * shape[3]));
        const tshape = tokenShape(shape, patch);
        const tf = uploadAs(eng, st, frames, shape, 'frames');
        const tokens = poisonedAs(eng, st, tshape, 'tokens');
        await patchify(eng, tf, patch, tokens);
        assertClose(`patchify ${name} ${st}`, await readAsF32(eng, tokens), patchifyCpu(frames, shape, patch), EXACT);
        const back = poisonedAs(eng, st, shape, 'back');
        await unpatchify(eng, tokens, shape, patch, back);
        assertClose(`unpatchify ${name} ${st}`, await readAsF32(eng, back), frames, EXACT);
        [tf, tokens, back].forEach((t) => t.dispose());
      });

      it(`unpatchify of arbitrary tokens, ${name}`, async () => {
        const tshape = tokenShape(shape, patch);
        const tokens = roundAs(st, new Rng(k + 100).normals(tshape[0] * tshape[1]));
        const tt = uploadAs(eng, st, tokens, tshape, 'tokens');
        const out = poisonedAs(eng, st, shape, 'frames');
        await unpatchify(eng, tt, shape, patch, out);
        assertClose(`unpatchify ${name} ${st}`, await readAsF32(eng, out), unpatchifyCpu(tokens, shape, patch), EXACT);
        [tt, out].forEach((t) => t.dispose());
      });
    });
  });
}

describe('patchify kernels: layout and arguments', () => {
  const iota = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

  it('orders features (c, py, px) and tokens row-major over patches', () => {
    // frames[0, c, y, x] = c·8 + y·4 + x, two 2×2 patches side by side
    expect([...patchifyCpu(iota(16), [1, 2, 2, 4], 2)]).toEqual([0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]);
    // frames[0, 0, y, x] = y·4 + x, a 2×2 grid of patches
    expect([...patchifyCpu(iota(16), [1, 1, 4, 4], 2)]).toEqual([0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]);
    // two frames: every token of frame 0 before frame 1
    expect([...patchifyCpu(iota(8), [2, 1, 2, 2], 2)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(tokenShape([3, 4, 28, 20], 4)).toEqual([3 * 7 * 5, 64]);
  });

  it('the GPU agrees with the hand-written layout', async () => {
    const tokens = await patchify(eng, eng.upload(iota(16), [1, 2, 2, 4]), 2);
    expect(tokens.shape).toEqual([2, 8]);
    expect([...(await eng.read(tokens))]).toEqual([0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]);
  });

  it('refuses bad arguments with ShapeError', () => {
    const frames = eng.upload(new Float32Array(2 * 3 * 8 * 12), [2, 3, 8, 12], 'frames');
    const refuse = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(ShapeError);
      expect(f).toThrow(msg);
    };
    refuse(() => patchify(eng, frames, 5), /patchify: frame height 8 is not a multiple of the patch size 5/);
    refuse(() => patchify(eng, frames, 8), /patchify: frame width 12 is not a multiple of the patch size 8/);
    refuse(() => patchify(eng, frames, 0), /patch must be a positive integer, got 0/);
    refuse(
      () => patchify(eng, frames.view([6, 8, 12]), 4),
      /frames must be \[frames, channels, height, width\] of positive sizes, got \[6, 8, 12\]/,
    );
    refuse(
      () => patchify(eng, frames, 4, eng.tensor([12, 47])),
      /patchify: out f32 \[12, 47\] must hold 576 f32 values/,
    );
    refuse(() => patchify(eng, frames, 4, frames), /out cannot be the input/);
    refuse(
      () => unpatchify(eng, frames.view([12, 48]), [2, 3, 8, 12], 2),
      /unpatchify: tokens \[12, 48\] must be \[48, 12\] for frames \[2, 3, 8, 12\] and patch 2/,
    );
    refuse(
      () => unpatchify(eng, frames.view([12, 48]), [2, 3, 8, 13], 4),
      /unpatchify: frame width 13 is not a multiple of the patch size 4/,
    );
    refuse(() => patchifyCpu(new Float32Array(10), [1, 1, 4, 4], 2), /10 values do not fill frames \[1, 1, 4, 4\]/);
  });
});
