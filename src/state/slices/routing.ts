/**
 * The routing slice: traces of the last (or running) generation and what the routing graph
 * shows of them. Traces are typed arrays (structured-cloneable, never GPU buffers); the graph
 * reads them through a transient `store.subscribe`, so a new trace each step never re-renders
 * React components that do not ask for it.
 */
import type { StateCreator } from 'zustand';
import type { StepTrace } from '../../model/api.ts';
import type { StudioState } from '../store.ts';

/** `-1` means "the latest step" for `step`, "all, aggregated" for `layer` and `head`. */
export interface RoutingFilter {
  step: number;
  layer: number;
  head: number;
}

export interface RoutingStats {
  sparsity: number;
  flopsVisited: number;
  flopsDense: number;
  msPerStep: number | null;
  /** True while the numbers come from a run still in progress. */
  live: boolean;
  /** What the run took from the kept-shot cache, in words ("kept shots 1–31 from cache …"). */
  reused?: string | null;
}

export interface RoutingSlice {
  routing: {
    traces: StepTrace[];
    filter: RoutingFilter;
    showMandatory: boolean;
    hovered: number | null;
    pinned: number | null;
    stats: RoutingStats | null;
    /** Shot ids of the run that produced the traces (chunk shot s → shotIds[s]). */
    shotIds: string[];
    /** Shot captions of that run as they were generated (chunk shot s → captions[s]). */
    captions: string[];
  };
  /** Adds a trace from a running generation (replacing one of the same step). */
  pushTrace(trace: StepTrace): void;
  /** Replaces every trace (start of a run: [], end: the result's traces); the run's shot ids and captions are kept when not given. */
  setTraces(traces: StepTrace[], shotIds?: string[], captions?: string[]): void;
  setRoutingStats(stats: RoutingStats | null): void;
  setFilter(patch: Partial<RoutingFilter>): void;
  setShowMandatory(on: boolean): void;
  hoverChunk(chunk: number | null): void;
  pinChunk(chunk: number | null): void;
}

export const createRoutingSlice: StateCreator<StudioState, [], [], RoutingSlice> = (set) => ({
  routing: {
    traces: [],
    filter: { step: -1, layer: -1, head: -1 },
    showMandatory: false,
    hovered: null,
    pinned: null,
    stats: null,
    shotIds: [],
    captions: [],
  },
  pushTrace: (trace) =>
    set((s) => ({ routing: { ...s.routing, traces: [...s.routing.traces.filter((t) => t.step !== trace.step), trace].sort((a, b) => a.step - b.step) } })),
  setTraces: (traces, shotIds, captions) =>
    set((s) => {
      const C = traces[traces.length - 1]?.chunks.start.length ?? 0;
      const keepPin = s.routing.pinned !== null && s.routing.pinned < C;
      return {
        routing: {
          ...s.routing,
          traces,
          shotIds: shotIds ?? s.routing.shotIds,
          captions: captions ?? s.routing.captions,
          pinned: keepPin ? s.routing.pinned : null,
          hovered: null,
        },
      };
    }),
  setRoutingStats: (stats) => set((s) => ({ routing: { ...s.routing, stats } })),
  setFilter: (patch) => set((s) => ({ routing: { ...s.routing, filter: { ...s.routing.filter, ...patch } } })),
  setShowMandatory: (showMandatory) => set((s) => ({ routing: { ...s.routing, showMandatory } })),
  hoverChunk: (hovered) => set((s) => (s.routing.hovered === hovered ? s : { routing: { ...s.routing, hovered } })),
  pinChunk: (pinned) => set((s) => ({ routing: { ...s.routing, pinned } })),
});
