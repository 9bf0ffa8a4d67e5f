import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/engine.ts';
import { MocDiT, routedToStream } from '../../src/model/dit.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';
import { testEngine } from '../helpers/gpu.ts';
import { loadFixture, loadFixtureModel, type Fixture } from './fixture.ts';

const TOL = { atol: 2e-4, rtol: 1e-3 };

describe('MocDiT forward matches the PyTorch reference (fixtures)', () => {
  let eng: Engine;
  let dit: MocDiT;
  let fx: Fixture;
  beforeAll(async () => {
    eng = await testEngine();
    fx = loadFixture();
    dit = MocDiT.create(eng, await loadFixtureModel());
  });

  const run = async (mode: 'moc' | 'dense' | 'shot', capture?: Map<string, Float32Array | Int32Array>) => {
    const { meta } = fx;
    const cfg = dit.config;
    const T = meta.frames.reduce((a, b) => a + b, 0);
    const x = eng.upload(fx.get('x_t'), [T, 3, cfg.imageSize, cfg.imageSize], 'test.x');
    const text = dit.textEmbedding(fx.ints('text'));
    const res = await dit.forward(x, fx.get('t_shot'), text, meta.frames, meta.chunk_frames, {
      mode,
      topK: meta.top_k,
      causal: meta.causal,
      inspect: capture ? async (name, t) => void capture.set(name, await eng.read(t) as Float32Array) : undefined,
    });
    const v = (await eng.read(res.velocity)) as Float32Array;
    res.velocity.dispose();
    x.dispose();
    return v;
  };

  it('moc: every layer, routing exact, velocity', async () => {
    const cap = new Map<string, Float32Array | Int32Array>();
    const v = await run('moc', cap);
    const seq = dit.sequence(fx.meta.frames, fx.meta.chunk_frames);
    for (const s of ['q', 'k', 'v', 'o']) assertClose(`blocks.0.attn.${s}`, cap.get(`blocks.0.attn.${s}`)!, fx.get(`moc.blocks.0.attn.${s}`), TOL);
    for (let i = 0; i < dit.config.depth; i++) {
      assertEqualInts(`blocks.${i}.routed`, routedToStream(cap.get(`blocks.${i}.routed`) as Int32Array, seq.toStream), fx.ints(`moc.blocks.${i}.routed`));
      assertClose(`blocks.${i}.text`, cap.get(`blocks.${i}.text`)!, fx.get(`moc.blocks.${i}.text`), TOL);
      assertClose(`blocks.${i}.video`, cap.get(`blocks.${i}.video`)!, fx.get(`moc.blocks.${i}.video`), TOL);
    }
    assertClose('velocity.moc', v, fx.get('velocity.moc'), TOL);
  });

  it('dense and shot velocities', async () => {
    assertClose('velocity.dense', await run('dense'), fx.get('velocity.dense'), TOL);
    assertClose('velocity.shot', await run('shot'), fx.get('velocity.shot'), TOL);
    expect(true).toBe(true);
  });
});
