/**
 * Teaching mode's action (src/state/actions/teach.ts) against a fake engine client: what it asks
 * the worker for — the network on the generated video (every shot's chosen take, the query
 * shot's run settings, t = 1/steps, the last layer unless another is chosen) or the seeded
 * example and why — and that the storyboard and takes are left as they were.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExplainRequest, Explanation } from '../../src/worker/protocol.ts';
import type { TakeMeta } from '../../src/state/types.ts';

const requests: ExplainRequest[] = [];
let fail: Error | null = null;

/** What the worker answers: enough of an explanation for the action (origin and head follow the request). */
function answer(req: ExplainRequest): Explanation {
  const network = req.network ? { model: 'm', layers: 3, layer: req.network.layer, t: req.network.t } : undefined;
  return {
    source: 's',
    origin: network ? 'network' : 'example',
    network,
    heads: network ? 4 : 2,
    headDim: 8,
    head: req.head,
    queryToken: 0,
    queryChunk: 0,
    queryHead: [],
    chunks: [],
    topK: req.topK,
    causal: req.causal,
    keyTokens: 0,
    totalTokens: 0,
  };
}

vi.mock('../../src/state/actions/engine.ts', () => ({
  engineClient: () => ({
    explain: async (req: ExplainRequest) => {
      requests.push(req);
      if (fail) throw fail;
      return answer(req);
    },
  }),
}));
vi.mock('../../src/state/actions/model.ts', () => ({ ensureModel: async () => undefined }));

const { explain, teachVideo } = await import('../../src/state/actions/teach.ts');
const { useStudio } = await import('../../src/state/store.ts');
const { putTake, dropTakes } = await import('../../src/state/media.ts');
const { WorkerError } = await import('../../src/worker/client.ts');

const SIZE = 4;
const st = () => useStudio.getState();

/** A take of every shot (or of the shots listed), with its own run settings. */
function addTakes(shots = st().shotIds.map((_, s) => s)): TakeMeta[] {
  const metas = shots.map((s) => {
    const shotId = st().shotIds[s];
    const frames = st().board.shots[s].frames;
    const meta: TakeMeta = {
      id: `take-${s}-${Math.random()}`,
      shotId,
      createdAt: s,
      caption: st().board.shots[s].caption,
      globalCaption: st().board.globalCaption,
      seed: 1,
      frames,
      width: SIZE,
      height: SIZE,
      model: 'm',
      steps: 8,
      guidance: 3,
      attention: { mode: 'moc', topK: 3, chunkFrames: 1, causal: false },
      runMs: 1,
      sparsity: 0.5,
    };
    putTake(meta.id, {
      pixels: new Uint8ClampedArray(frames * SIZE * SIZE * 4).fill(10 + s),
      frames,
      width: SIZE,
      height: SIZE,
    });
    return meta;
  });
  st().addTakes(metas);
  return metas;
}

describe('teaching mode: the network on the generated video, else the seeded example', () => {
  beforeEach(() => {
    requests.length = 0;
    fail = null;
    const all = Object.values(st().takes).flat();
    dropTakes(all.map((t) => t.id));
    st().setTakes({}, {});
    st().setRun({ phase: 'idle' });
    st().setModel({
      phase: 'ready',
      name: 'm',
      error: null,
      info: { name: 'm', imageSize: SIZE, patchSize: 2, textLen: 4, depth: 3, heads: 4 } as never,
    });
    st().setSettings({ attention: { mode: 'moc', topK: 1, chunkFrames: 2, causal: true } });
    st().setTeach({ query: null, result: null, layer: null, fallback: null, phase: 'idle', error: null });
  });

  const query = () => ({ shotId: st().shotIds[1], frame: 0, patch: 3 });

  it('before anything is generated: the seeded example, saying so', async () => {
    expect(teachVideo(0)).toEqual({ reason: 'nothing has been generated yet' });
    await explain(query());
    expect(requests).toHaveLength(1);
    expect(requests[0].network).toBeUndefined();
    expect(requests[0]).toMatchObject({
      topK: 1,
      chunkFrames: 2,
      causal: true,
      tokensPerFrame: 4,
      query: { shot: 1, frame: 0, patch: 3 },
    });
    expect(st().teach).toMatchObject({ phase: 'ready', fallback: 'nothing has been generated yet' });
    expect(st().teach.result?.origin).toBe('example');
  });

  it("with a take of every shot: the network on the takes' frames, the query shot's run settings, t = 1/steps, the last layer", async () => {
    const metas = addTakes();
    const board = st().board;
    await explain(query());
    const net = requests[0].network!;
    expect(net.storyboard).toEqual(board);
    expect(net.frames.map((f) => [f.length, f[0]])).toEqual(
      board.shots.map((s, i) => [s.frames * SIZE * SIZE * 4, 10 + i]),
    );
    expect(net).toMatchObject({ t: 1 / 8, layer: 2 });
    expect(requests[0]).toMatchObject({ topK: 3, chunkFrames: 1, causal: false, head: 0 });
    expect(st().teach).toMatchObject({ phase: 'ready', fallback: null });
    expect(st().teach.result?.network).toEqual({ model: 'm', layers: 3, layer: 2, t: 1 / 8 });
    // another head keeps the layer; another layer is remembered and keeps the head
    await explain(query(), { head: 3 });
    expect(requests[1]).toMatchObject({ head: 3, network: { layer: 2 } });
    await explain(query(), { layer: 0 });
    expect(requests[2]).toMatchObject({ head: 3, network: { layer: 0 } });
    await explain({ ...query(), patch: 0 });
    expect(requests[3]).toMatchObject({ head: 3, network: { layer: 0 } });
    // nothing of the user's changed
    expect(st().board).toBe(board);
    expect(Object.values(st().takes).flat()).toEqual(metas);
  });

  it('a shot without a take, no model or a run going on: the seeded example, and why', async () => {
    addTakes([0]);
    await explain(query());
    expect(requests[0].network).toBeUndefined();
    expect(st().teach.fallback).toMatch(/^shots? 2.* no generated take/);
    addTakes([1, 2].filter((s) => s < st().shotIds.length));
    st().setRun({ phase: 'running' });
    await explain(query());
    expect(requests[1].network).toBeUndefined();
    expect(st().teach.fallback).toMatch(/a generation is running/);
    st().setRun({ phase: 'done' });
    st().setModel({ phase: 'error', info: null, error: { code: 'model-missing', message: 'offline' } });
    await explain(query());
    expect(st().teach.fallback).toBe('no model is loaded (offline)');
    expect(st().teach.result?.origin).toBe('example');
  });

  it('a failure of the network pass is one line; the takes stay', async () => {
    const metas = addTakes();
    fail = new WorkerError('bad-request', "storyboard.shots[1].caption: unknown word 'spinz'");
    await explain(query());
    expect(st().teach).toMatchObject({
      phase: 'error',
      result: null,
      error: { code: 'bad-request', message: "storyboard.shots[1].caption: unknown word 'spinz'" },
    });
    expect(Object.values(st().takes).flat()).toEqual(metas);
  });
});
