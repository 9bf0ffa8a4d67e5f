/**
 * The engine api (src/worker/in-thread.ts) on Dawn with the fixture model served by a stubbed
 * fetch: what loading tells the UI, and a device lost mid-run.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { nodeGpu } from '../../src/engine/host-node.ts';
import { createEngineApi } from '../../src/worker/in-thread.ts';
import type { EngineErrorInfo } from '../../src/worker/protocol.ts';
import { MODEL_DIR } from './fixture.ts';

vi.stubGlobal(
  'fetch',
  async (url: string) => new Response(await readFile(join(MODEL_DIR, new URL(url).pathname.split('/').pop()!))),
);
const gpu = await nodeGpu();
const api = createEngineApi(() => gpu);
afterAll(() => api.dispose());
const source = { name: 'fixture', url: 'http://localhost/models/fixture/' };

it("reports the model's attention defaults from its config.json", async () => {
  await api.init();
  const config = JSON.parse(await readFile(join(MODEL_DIR, 'config.json'), 'utf8')) as {
    top_k: number;
    chunk_frames: number;
    causal: boolean;
  };
  const info = await api.loadModel(source);
  expect(info.attention).toEqual({
    mode: 'moc',
    topK: config.top_k,
    chunkFrames: config.chunk_frames,
    causal: config.causal,
  });
});

it("explain: the network's numbers on a generated video through the api; busy while a run goes on", async () => {
  await api.init();
  const info = await api.loadModel(source);
  const storyboard = {
    version: 1 as const,
    globalCaption: 'Character 1 is a red star.',
    shots: [
      { caption: 'Character 1 bounces, wide.', frames: 2, seed: 1 },
      { caption: 'Character 1 spins in the snow.', frames: 1, seed: 2 },
    ],
  };
  const attention = { ...info.attention, topK: 1 };
  const video = (await api.generate({ storyboard, steps: 1, guidance: 1, attention })).shots.map((s) => s.frames);
  const grid = info.imageSize / info.patchSize;
  const request = {
    globalCaptionTokens: info.textLen,
    shots: storyboard.shots.map((s) => ({ captionTokens: info.textLen, frames: s.frames })),
    tokensPerFrame: grid * grid,
    chunkFrames: attention.chunkFrames,
    topK: attention.topK,
    causal: attention.causal,
    query: { shot: 1, frame: 0, patch: 0 },
    head: 1,
    seed: 2,
  };
  const seeded = await api.explain(request);
  expect(seeded.origin).toBe('example');
  const real = await api.explain({ ...request, network: { storyboard, frames: video, t: 1, layer: 0 } });
  expect(real).toMatchObject({
    origin: 'network',
    heads: info.heads,
    head: 1,
    network: { model: 'fixture-tiny', layers: info.depth, layer: 0, t: 1 },
  });
  expect(real.chunks.filter((c) => c.routed)).toHaveLength(1); // shot 2's frame routes to one of shot 1's two frames
  const run = api.generate({ storyboard, steps: 40, guidance: 1, attention });
  await expect(
    api.explain({ ...request, network: { storyboard, frames: video, t: 1, layer: 0 } }),
  ).rejects.toMatchObject({ code: 'busy' });
  api.cancel();
  await expect(run).rejects.toMatchObject({ code: 'cancelled' });
});

it('a run the device loss cuts short rejects with device-lost, not cancelled', async () => {
  await api.init();
  const info = await api.loadModel(source);
  const lost: EngineErrorInfo[] = [];
  api.onDeviceLost((e) => lost.push(e));
  const storyboard = {
    version: 1 as const,
    globalCaption: 'Character 1 is a red star.',
    shots: [{ caption: 'Character 1 bounces, wide.', frames: 2, seed: 1 }],
  };
  const run = api.generate({ storyboard, steps: 40, guidance: 1, attention: info.attention }, (p) => {
    if (p.step === 1) api.loseDevice();
  });
  await expect(run).rejects.toMatchObject({ code: 'device-lost' });
  await vi.waitFor(() => expect(lost.map((e) => e.code)).toEqual(['device-lost']));
});
