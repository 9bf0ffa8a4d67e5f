/** The routing graph across reloads: traces kept in (fake) IndexedDB, summarised to a budget, shown again; routing.json. */
import 'fake-indexeddb/auto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/random.ts';
import type { StepTrace } from '../../src/model/api.ts';
import { buildChunkTable } from '../../src/model/layout.ts';
import { chunkDescriptors, routeReference } from '../../src/model/moc-reference.ts';
import { routingTrace } from '../../src/model/routing-trace.ts';
import { keepRouting, restoreRouting, routingJson } from '../../src/state/actions/routing.ts';
import {
  ROUTING_FORMAT,
  clearRouting,
  closeRoutingDb,
  loadRouting,
  readRoutingRecord,
  saveRouting,
  summariseTraces,
  traceBytes,
} from '../../src/state/routing-persist.ts';
import { createStudioStore, useStudio } from '../../src/state/store.ts';
import type { TakeMeta } from '../../src/state/types.ts';
import { routedEdges, scoreProfile } from '../../src/viz/dag-layout.ts';

const table = buildChunkTable({
  globalCaptionTokens: 3,
  shots: [
    { captionTokens: 2, frames: 3 },
    { captionTokens: 2, frames: 2 },
  ],
  tokensPerFrame: 4,
  chunkFrames: 1,
});
const attention = { mode: 'moc' as const, topK: 1, chunkFrames: 1, causal: true };
const stats = { sparsity: 0.4, flopsVisited: 10, flopsDense: 20, msPerStep: 5, live: false };

function makeTrace(step: number): StepTrace {
  const H = 2;
  const D = 4;
  const N = table.n;
  const rng = new Rng(step + 1);
  const q = rng.normals(H * N * D);
  const k = rng.normals(H * N * D);
  const dims = { H, N, D };
  const desc = chunkDescriptors(k, dims, table);
  const routed = routeReference(q, desc, dims, table, { topK: 1, causal: true, mode: 'moc' });
  const t = routingTrace(q, desc, routed, 1, dims, table);
  return { step, chunks: table, layers: [t, t] };
}

const take = (id: string, shotId: string): TakeMeta => ({
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
  attention,
  runMs: 0,
  sparsity: 0,
});

const traces = [makeTrace(0), makeTrace(2), makeTrace(4)];
const run = { takeIds: ['t1', 't2'], shotIds: ['s1', 's2'], captions: ['a', 'b'], attention, stats, traces };

beforeEach(async () => {
  await clearRouting();
});
afterAll(async () => {
  await closeRoutingDb();
});

describe('summariseTraces', () => {
  const one = traceBytes(traces[0]);
  it('keeps every step within the budget, the last ones when not all fit, none when the last alone does not', () => {
    expect(one).toBeGreaterThan(1000);
    expect(summariseTraces(traces, 10 * one)!.map((t) => t.step)).toEqual([0, 2, 4]);
    expect(summariseTraces(traces, 2 * one + 1)!.map((t) => t.step)).toEqual([2, 4]);
    expect(summariseTraces(traces, one)!.map((t) => t.step)).toEqual([4]);
    expect(summariseTraces(traces, one - 1)).toBeNull();
    expect(summariseTraces([], 1)).toEqual([]);
  });
});

describe('saved routing', () => {
  it('round-trips traces through IndexedDB: the same edges and scores after a reload', async () => {
    expect(await saveRouting(run, 1e9)).toEqual({ kept: 3, of: 3 });
    const rec = (await loadRouting())!;
    expect(rec.format).toBe(ROUTING_FORMAT);
    expect(rec.traces.map((t) => t.step)).toEqual([0, 2, 4]);
    expect(rec.tracedSteps).toBe(3);
    expect(rec.takeIds).toEqual(['t1', 't2']);
    const f = { layer: -1, head: -1 };
    expect(routedEdges(rec.traces[2], f)).toEqual(routedEdges(traces[2], f));
    expect(scoreProfile(rec.traces[2], 6, f, 1, true)).toEqual(scoreProfile(traces[2], 6, f, 1, true));
    expect(rec.traces[2].layers[0].qMean).toBeInstanceOf(Float32Array);
  });

  it('summarises a run over the budget and says when a run cannot be kept at all', async () => {
    const one = traceBytes(traces[0]);
    expect(await saveRouting(run, one + 10)).toEqual({ kept: 1, of: 3 });
    const rec = (await loadRouting())!;
    expect(rec.traces.map((t) => t.step)).toEqual([4]);
    expect(rec.tracedSteps).toBe(3);
    const tooBig = await saveRouting(run, 100);
    expect(tooBig.kept).toBe(0);
    expect('reason' in tooBig && tooBig.reason).toMatch(
      /^its last step's traces take 0\.\d MiB, over the 0\.0 MiB kept for routing$/,
    );
    expect(await loadRouting()).toBeNull(); // the previous run's record went too
  });

  it('refuses records it did not write', () => {
    expect(readRoutingRecord(undefined)).toBeNull();
    expect(readRoutingRecord({ ...run, format: ROUTING_FORMAT + 1, tracedSteps: 3, savedAt: 0 })).toBeNull();
    expect(
      readRoutingRecord({
        ...run,
        format: ROUTING_FORMAT,
        traces: [{ step: 0, chunks: {}, layers: [] }],
        tracedSteps: 1,
        savedAt: 0,
      }),
    ).toBeNull();
    expect(readRoutingRecord({ ...run, format: ROUTING_FORMAT, tracedSteps: 3, savedAt: 0 })).not.toBeNull();
  });
});

describe('the graph after a reload', () => {
  const fresh = useStudio.getState();
  beforeEach(() => {
    useStudio.setState(fresh, true);
  });

  it('shows the kept run when one of its takes is still there, not otherwise', async () => {
    await keepRouting(run);
    useStudio.getState().setTakes({ s2: [take('t2', 's2')] }, { s2: 't2' });
    expect(await restoreRouting()).toBeNull();
    const r = useStudio.getState().routing;
    expect(r.traces.map((t) => t.step)).toEqual([0, 2, 4]);
    expect(r.shotIds).toEqual(['s1', 's2']);
    expect(r.stats).toEqual(stats);
    expect(r.origin).toEqual({ attention, restored: true, stepsOf: null });

    useStudio.setState(fresh, true);
    useStudio.getState().setTakes({ s2: [take('other', 's2')] }, { s2: 'other' });
    expect(await restoreRouting()).toBeNull();
    expect(useStudio.getState().routing.traces).toEqual([]);
  });

  it('exports routing.json in the CLI format', async () => {
    expect(routingJson()).toBeNull();
    const st = useStudio.getState();
    st.setTraces(traces, ['s1', 's2'], ['a', 'b']);
    st.setRoutingStats(stats);
    st.setRoutingOrigin({ attention: { ...attention, topK: 3 }, restored: false, stepsOf: null });
    const json = JSON.parse(await routingJson()!.text());
    expect(json).toMatchObject({
      mode: 'moc',
      topK: 3,
      chunkFrames: 1,
      causal: true,
      heads: 2,
      sparsity: 0.4,
      attentionFlops: { visited: 10, dense: 20 },
    });
    expect(json.chunks).toHaveLength(table.start.length);
    expect(json.steps.map((s: { step: number }) => s.step)).toEqual([0, 2, 4]);
    // the edges of a layer are the routed edges summed over heads
    const sum = routedEdges(traces[1], { layer: 0, head: -1 })
      .map((e) => [e.from, e.to, e.count])
      .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    expect(json.steps[1].layers[0].edges).toEqual(sum);
  });
});

describe('routing slice across runs', () => {
  it('keeps the last run on show until the next run sends its first trace', () => {
    const store = createStudioStore();
    const st = () => store.getState();
    st().setTraces(traces, ['s1', 's2'], ['a', 'b']);
    st().pinChunk(6);
    st().beginRouting(['s1', 's2', 's3'], ['a', 'b', 'c']);
    expect(st().routing.traces).toHaveLength(3);
    expect(st().routing.shotIds).toEqual(['s1', 's2']);
    st().pushTrace(makeTrace(1));
    expect(st().routing.traces.map((t) => t.step)).toEqual([1]);
    expect(st().routing.shotIds).toEqual(['s1', 's2', 's3']);
    expect(st().routing.pinned).toBe(6);
    st().pushTrace(makeTrace(3));
    expect(st().routing.traces.map((t) => t.step)).toEqual([1, 3]);
    // a run that ends before its first trace leaves the graph as it was
    st().beginRouting(['x'], ['x']);
    st().abandonRouting();
    st().pushTrace(makeTrace(5));
    expect(st().routing.traces.map((t) => t.step)).toEqual([1, 3, 5]);
  });
});
