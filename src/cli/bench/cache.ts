/**
 * `moc bench cache`: what the kept-shot cache saves (src/model/shot-cache.ts). On a storyboard
 * shaped like public/storyboards/valley-day.json (its shot lengths, plus one appended 8-frame
 * shot), one sampler step of: the whole board (every shot sampled); appending the 8-frame shot
 * (every earlier shot kept) with and without the cache; regenerating valley-day's last shot
 * (shots 1–31 kept) with and without the cache. `--quick` (e.g. SwiftShader): every length
 * divided by 4 (valley-day's 12-frame shots → 3, the appended shot → 2; the same proportions)
 * and no uncached append/regenerate (the whole board's step is their cost to ±1 shot). A
 * one-step run on a small board first compiles the pipelines. Per case: wall ms of the step
 * (GPU synced), of the prefix fill before it, and the step's ratio to the whole board's.
 * Guidance 1 (one model call per step: the ratio is the same with two), causal MoC at the
 * model's top-k, no traces. Needs a causal-text model (--model, default public/models/moc-tiny).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Engine } from '../../engine/engine.ts';
import { nodeGpu } from '../../engine/host-node.ts';
import { Rng } from '../../engine/random.ts';
import { MocDiT } from '../../model/dit.ts';
import { shotNoise } from '../../model/generate.ts';
import { sample, type CacheUse } from '../../model/sampler.ts';
import { loadModelDir } from '../generate.ts';
import type { BenchArgs } from '../bench.ts';

interface Case {
  name: string;
  frames: number[];
  kept: number;
  cache: boolean;
}

export async function run(a: BenchArgs): Promise<number> {
  const modelDir = a.model ?? join('public', 'models', 'moc-tiny');
  const model = await loadModelDir(modelDir);
  const cfg = model.config;
  if (!cfg.causalText) {
    console.error(`moc bench cache: ${modelDir} was not trained with causal_text; the cache needs a causal-text model`);
    return 1;
  }
  const board = JSON.parse(await readFile(join('public', 'storyboards', 'valley-day.json'), 'utf8')) as {
    shots: { frames: number }[];
  };
  const scale = a.quick ? 4 : 1;
  const valley = board.shots.map((s) => Math.max(1, Math.round(s.frames / scale)));
  const appended = [...valley, 8 / scale];
  const S = valley.length;
  const cases: Case[] = [
    { name: `whole board (${S + 1} shots sampled)`, frames: appended, kept: 0, cache: false },
    { name: `append shot ${S + 1} (${8 / scale} frames), cached`, frames: appended, kept: S, cache: true },
    { name: `append shot ${S + 1}, no cache`, frames: appended, kept: S, cache: false },
    { name: `regenerate shot ${S}, cached`, frames: valley, kept: S - 1, cache: true },
    { name: `regenerate shot ${S}, no cache`, frames: valley, kept: S - 1, cache: false },
  ].filter((c) => (!a.quick || c.cache || c.kept === 0) && (!a.filter || c.name.includes(a.filter)));
  const eng = await Engine.create(await nodeGpu());
  const dit = MocDiT.create(eng, model);
  const attention = { mode: 'moc' as const, topK: cfg.topK, chunkFrames: cfg.chunkFrames, causal: cfg.causal };
  const per = 3 * cfg.imageSize * cfg.imageSize;
  console.log(
    `moc bench cache: ${cfg.name} on ${eng.describe()}; valley-day-shaped board (${valley.join(',')} frames, + one ${8 / scale}-frame shot), moc top-k ${cfg.topK}, chunk frames ${cfg.chunkFrames}, guidance 1`,
  );
  const rows: Array<{ name: string; tokens: number; stepMs: number; fillMs: number | null; use: CacheUse | null }> = [];
  const noise = (frames: number[]) =>
    shotNoise(
      frames,
      frames.map((_, s) => 100 + s),
      cfg.imageSize,
    );
  try {
    // compile every pipeline once (a 2-shot board, cached and not), so the timed steps do not
    const warm = [1, 1];
    const warmText = new Int32Array(3 * cfg.textLen).fill(2);
    for (const cacheBytes of [0, undefined]) {
      const keep = { shots: [true, false], frames: new Float32Array(2 * per) };
      (
        await sample(
          dit,
          { text: warmText, frames: warm, noise: noise(warm), keep },
          { steps: 1, guidance: 1, attention, cacheBytes },
        )
      ).dispose();
    }
    for (const c of cases) {
      const T = c.frames.reduce((x, y) => x + y, 0);
      const rng = new Rng(7);
      const text = new Int32Array((c.frames.length + 1) * cfg.textLen);
      for (let i = 0; i < text.length; i++) text[i] = 2 + rng.int(cfg.vocabSize - 2);
      const keep = {
        shots: c.frames.map((_, s) => s < c.kept),
        frames: Float32Array.from(rng.normals(T * per), (v) => Math.tanh(v)),
      };
      dit.shotCache.clear(); // each case from a cold cache: its step 1 fills it
      let use: CacheUse | null = null;
      let stepStart = 0;
      let stepEnd = 0;
      await eng.sync();
      const t0 = performance.now();
      const x = await sample(
        dit,
        { text, frames: c.frames, noise: noise(c.frames), keep },
        {
          steps: 1,
          guidance: 1,
          attention,
          cacheBytes: c.cache ? undefined : 0,
          onCache: (u) => (use = u),
          timer: () => {
            stepStart = performance.now();
            return undefined;
          },
          onStepDone: async () => {
            await eng.sync();
            stepEnd = performance.now();
          },
        },
      );
      x.dispose();
      const tokens = dit.sequence(c.frames, attention.chunkFrames).n;
      const row = { name: c.name, tokens, stepMs: stepEnd - stepStart, fillMs: use ? stepStart - t0 : null, use };
      rows.push(row);
      console.log(
        `  ${row.name}: ${tokens} tokens, step ${row.stepMs.toFixed(0)} ms${row.fillMs !== null ? `, prefix fill ${row.fillMs.toFixed(0)} ms` : ''}`,
      );
    }
    const whole = rows.find((r) => r.name.startsWith('whole'));
    if (whole) {
      console.log('per-step time / whole board step:');
      for (const r of rows)
        console.log(
          `  ${r.name}: ${(r.stepMs / whole.stepMs).toFixed(3)}${r.use ? ` (${(r.use as CacheUse).keptShots} shots from the cache)` : ''}`,
        );
    }
    return 0;
  } finally {
    dit.dispose();
    eng.destroy();
  }
}
