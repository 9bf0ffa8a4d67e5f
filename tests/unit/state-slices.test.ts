/** The takes, generation and routing slices, and the sample/model index parsers. */
import { describe, expect, it } from 'vitest';
import { parseSampleIndex } from '../../src/state/actions/board.ts';
import { modelUrl, parseModelIndex } from '../../src/state/actions/model.ts';
import { isRunning } from '../../src/state/slices/generation.ts';
import { MAX_TAKES_PER_SHOT } from '../../src/state/slices/takes.ts';
import { createStudioStore } from '../../src/state/store.ts';
import type { TakeMeta } from '../../src/state/types.ts';

const take = (id: string, shotId = 's'): TakeMeta => ({
  id,
  shotId,
  createdAt: 0,
  caption: '',
  globalCaption: '',
  seed: 0,
  frames: 1,
  width: 1,
  height: 1,
  model: 'm',
  steps: 1,
  guidance: 1,
  attention: { mode: 'moc', topK: 1, chunkFrames: 1, causal: true },
  runMs: 0,
  sparsity: 0,
});

describe('takes slice', () => {
  it('chooses each new take and keeps a bounded history per shot', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().addTakes([take('a'), take('x', 'other')]);
    expect(st().chosen).toEqual({ s: 'a', other: 'x' });
    st().chooseTake('s', 'a');
    const dropped: string[] = [];
    for (let i = 0; i < MAX_TAKES_PER_SHOT + 2; i++) {
      st().chooseTake('s', 'a'); // 'a' stays chosen, so it is never the one dropped
      dropped.push(...st().addTakes([take(`t${i}`)]));
      st().chooseTake('s', 'a');
    }
    expect(st().takes.s).toHaveLength(MAX_TAKES_PER_SHOT);
    expect(st().takes.s.some((t) => t.id === 'a')).toBe(true);
    expect(dropped).toEqual(['t0', 't1', 't2']);
  });

  it('falls back to the newest take when the chosen one is removed', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().addTakes([take('a'), take('b')]);
    st().chooseTake('s', 'a');
    st().removeTake('s', 'a');
    expect(st().chosen.s).toBe('b');
    st().removeTake('s', 'b');
    expect(st().chosen.s).toBeUndefined();
    expect(st().takes.s).toBeUndefined();
  });

  it('ignores choosing a take the shot does not have', () => {
    const store = createStudioStore();
    store.getState().addTakes([take('a')]);
    store.getState().chooseTake('s', 'nope');
    expect(store.getState().chosen.s).toBe('a');
  });
});

describe('generation slice', () => {
  it('merges settings and attention options', () => {
    const store = createStudioStore();
    store.getState().setAttention({ topK: 5 });
    store.getState().setSettings({ steps: 3 });
    expect(store.getState().settings.attention).toMatchObject({ topK: 5, mode: 'moc' });
    expect(store.getState().settings.steps).toBe(3);
  });

  const base = { mode: 'moc', topK: 4, chunkFrames: 1, causal: true } as const;

  it("takes a loaded model's attention defaults, keeping what was set by hand", () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().applyModelDefaults(base);
    expect(st().settings.attention).toEqual(base);
    expect(st().settings.attentionByHand).toEqual([]);
    st().setAttention({ topK: 2 });
    st().setAttention({ topK: 3, mode: 'dense' });
    expect(st().settings.attentionByHand).toEqual(['topK', 'mode']);
    // the same model loads again (a reload, a device loss), or with a changed config.json
    st().applyModelDefaults(base);
    expect(st().settings.attention).toEqual({ ...base, topK: 3, mode: 'dense' });
    st().applyModelDefaults({ ...base, topK: 8, chunkFrames: 2 });
    expect(st().settings.attention).toEqual({ mode: 'dense', topK: 3, chunkFrames: 2, causal: true });
  });

  it("switching model resets to that model's defaults; choosing the same one keeps the hand-set options", () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().setModel({ name: 'moc-base' });
    st().applyModelDefaults(base);
    st().setAttention({ causal: false });
    st().setInterrupted({ kind: 'all', shots: 2, step: 3, steps: 40 });
    st().selectModel('moc-base');
    expect(st().settings.attentionByHand).toEqual(['causal']);
    expect(st().interrupted).not.toBeNull();
    st().selectModel('moc-tiny');
    expect(st().settings.model).toBe('moc-tiny');
    expect(st().settings.attentionByHand).toEqual([]);
    expect(st().interrupted).toBeNull(); // its request was for the other model
    st().setModel({ name: 'moc-tiny' });
    st().applyModelDefaults({ ...base, topK: 1 });
    expect(st().settings.attention).toEqual({ ...base, topK: 1 });
    // options set while the new model loads count as set by hand for it
    st().selectModel('moc-base');
    st().setAttention({ chunkFrames: 3 });
    st().setModel({ name: 'moc-base' });
    st().applyModelDefaults(base);
    expect(st().settings.attention).toEqual({ ...base, chunkFrames: 3 });
  });

  it('knows which phases hold the engine', () => {
    expect(['preparing', 'running', 'cancelling'].every((p) => isRunning(p as never))).toBe(true);
    expect(['idle', 'done', 'cancelled', 'error'].some((p) => isRunning(p as never))).toBe(false);
  });
});

describe('routing slice', () => {
  it('keeps one trace per step in order and drops a pin that no longer fits', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    const trace = (step: number, C: number) => ({ step, chunks: { start: new Int32Array(C) } as never, layers: [] });
    st().pushTrace(trace(3, 4));
    st().pushTrace(trace(1, 4));
    st().pushTrace(trace(3, 4));
    expect(st().routing.traces.map((t) => t.step)).toEqual([1, 3]);
    st().pinChunk(3);
    st().setTraces([trace(0, 10)]);
    expect(st().routing.pinned).toBe(3);
    st().setTraces([trace(0, 2)]);
    expect(st().routing.pinned).toBeNull();
    // a run's shot ids and captions stay with its traces until another run gives its own
    st().setTraces([], ['a', 'b'], ['Character 1 bounces, wide.', 'Nobody is in the snow, wide.']);
    st().setTraces([trace(0, 2)]);
    expect(st().routing.shotIds).toEqual(['a', 'b']);
    expect(st().routing.captions).toEqual(['Character 1 bounces, wide.', 'Nobody is in the snow, wide.']);
  });
});

describe('index files', () => {
  it('reads sample indexes of several shapes, resolving paths against the index', () => {
    const base = 'http://h/storyboards/index.json';
    expect(parseSampleIndex([{ name: 'Two friends', file: 'two.json', description: 'd' }], base)).toEqual([
      { name: 'Two friends', url: 'http://h/storyboards/two.json', description: 'd' },
    ]);
    expect(parseSampleIndex({ storyboards: ['a-b.json'] }, base)[0]).toMatchObject({
      name: 'a b',
      url: 'http://h/storyboards/a-b.json',
    });
    expect(parseSampleIndex({ nope: 1 }, base)).toEqual([]);
    expect(parseSampleIndex([{ name: 'no file' }], base)).toEqual([]);
  });

  it('reads model indexes and resolves folders under the page base', () => {
    const [e] = parseModelIndex({
      models: [{ name: 'tiny', path: 'models/tiny', params: '12', default: true }, { nope: 1 }],
    });
    expect(e).toMatchObject({ name: 'tiny', path: 'models/tiny', params: 12, default: true });
    (globalThis as { location?: unknown }).location = { href: 'http://h/app/' };
    expect(modelUrl(e, '/app/')).toBe('http://h/app/models/tiny/');
    expect(modelUrl({ ...e, path: 'public/models/tiny/' }, '/')).toBe('http://h/models/tiny/');
  });
});
