import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { Rng } from '../../src/engine/random.ts';
import { MocDiT } from '../../src/model/dit.ts';
import { shotNoise } from '../../src/model/generate.ts';
import { sample, type CacheUse, type SampleInputs, type SampleOptions } from '../../src/model/sampler.ts';
import { loadModel } from '../../src/model/weights.ts';
import { assertClose } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';
import { dirFiles } from './fixture.ts';

// The kept-shot cache on the shipped test model (moc-tiny, trained with causal_text): a
// generation that keeps shots 0 and 1 and samples shot 2 gives the same frames whether the
// prefix's keys and values are cached or every step runs the whole network.
describe('kept-shot cache (moc-tiny)', () => {
  let eng: Engine;
  let dit: MocDiT;
  const frames = [2, 1, 2];
  const T = frames.reduce((a, b) => a + b, 0);
  let inputs: SampleInputs;
  let per: number;
  beforeAll(async () => {
    eng = await testEngine();
    const model = await loadModel(dirFiles(join('public', 'models', 'moc-tiny')), 'public/models/moc-tiny');
    dit = MocDiT.create(eng, model);
    const cfg = dit.config;
    per = 3 * cfg.imageSize * cfg.imageSize;
    const rng = new Rng(5);
    const text = new Int32Array((frames.length + 1) * cfg.textLen);
    for (let i = 0; i < text.length; i++) text[i] = 2 + rng.int(cfg.vocabSize - 2);
    const keep = Float32Array.from(rng.normals(T * per), (v) => Math.tanh(v));
    inputs = {
      text,
      frames,
      noise: shotNoise(frames, [11, 12, 13], cfg.imageSize),
      keep: { shots: [true, true, false], frames: keep },
    };
  });

  const run = async (opts: Partial<SampleOptions>, input = inputs): Promise<{ x: Float32Array; uses: CacheUse[] }> => {
    const uses: CacheUse[] = [];
    const attention = { mode: 'moc' as const, topK: 2, chunkFrames: 1, causal: true };
    const x = await sample(dit, input, { steps: 2, guidance: 2, attention, onCache: (u) => uses.push(u), ...opts });
    const out = (await eng.read(x)) as Float32Array;
    x.dispose();
    return { x: out, uses };
  };

  it('moc-tiny is a causal-text model', () => {
    expect(dit.config.causalText).toBe(true);
  });

  it('cached and uncached generation agree; the next identical generation reuses the cache', async () => {
    const whole = await run({ cacheBytes: 0 });
    expect(whole.uses).toEqual([]);
    const first = await run({});
    expect(first.uses.map((u) => [u.keptShots, u.hit])).toEqual([[2, false]]);
    expect(first.uses[0].bytes).toBeGreaterThan(0);
    const Tp = frames[0] + frames[1];
    // kept shots untouched, the sampled shot as without the cache
    expect(first.x.subarray(0, Tp * per)).toEqual(inputs.keep!.frames.subarray(0, Tp * per));
    assertClose('cached vs whole network', first.x.subarray(Tp * per), whole.x.subarray(Tp * per), {
      atol: 2e-4,
      rtol: 1e-3,
    });
    expect(whole.x.subarray(Tp * per).some((v, i) => Math.abs(v - inputs.noise[Tp * per + i]) > 0.1)).toBe(true); // it did sample
    const again = await run({});
    expect(again.uses.map((u) => [u.keptShots, u.hit])).toEqual([[2, true]]);
    expect(again.x).toEqual(first.x);
  }, 900_000); // SwiftShader compiles every kernel of a forward pass on first use

  it('a change before the sampled shot misses the cache and still agrees with the whole network', async () => {
    const keep = inputs.keep!.frames.slice();
    keep[5] = -keep[5]; // one value of shot 0's first frame
    const changed = { ...inputs, keep: { shots: inputs.keep!.shots, frames: keep } };
    const cachedRun = await run({}, changed);
    expect(cachedRun.uses.map((u) => u.hit)).toEqual([false]);
    const whole = await run({ cacheBytes: 0 }, changed);
    const Tp = frames[0] + frames[1];
    assertClose('changed board', cachedRun.x.subarray(Tp * per), whole.x.subarray(Tp * per), {
      atol: 2e-4,
      rtol: 1e-3,
    });
  }, 600_000);

  it('does not cache what it cannot: dense attention, nothing kept before the sampled shot, or too little memory', async () => {
    expect((await run({ attention: { mode: 'dense', topK: 2, chunkFrames: 1, causal: true }, steps: 1 })).uses).toEqual(
      [],
    );
    const none = { ...inputs, keep: { shots: [false, true, false], frames: inputs.keep!.frames } };
    expect((await run({ steps: 1 }, none)).uses).toEqual([]);
    expect((await run({ steps: 1, cacheBytes: 1000 })).uses).toEqual([]);
  }, 600_000);
});
