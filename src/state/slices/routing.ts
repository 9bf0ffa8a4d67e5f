/**
 * The routing slice: traces of the last (or running) generation and what the routing graph
 * shows of them. Traces are typed arrays (structured-cloneable, never GPU buffers); the graph
 * reads them through a transient `store.subscribe`, so a new trace each step never re-renders
 * React components that do not ask for it.
 */
import type { StateCreator } from 'zustand';
import type { AttentionOptions, StepTrace } from '../../model/api.ts';
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

export interface RoutingOrigin {
  /** The run's attention options (for routing.json and the score chart's top-k cut). */
  attention: AttentionOptions;
  /** True when restored from storage (saved with the run's takes). */
  restored: boolean;
  /** Traced steps the run had, when fewer were kept (storage summarised them); null when all were. */
  stepsOf: number | null;
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
    /**
     * A run that has started but sent no trace yet: its shot ids and captions. Until its first
     * trace arrives the graph keeps showing the traces above (the last finished run), never a blank.
     */
    next: { shotIds: string[]; captions: string[] } | null;
    /** Where the traces shown come from: this session's run, or one restored from storage after a reload. */
    origin: RoutingOrigin | null;
  };
  /** Adds a trace from a running generation (replacing one of the same step). */
  pushTrace(trace: StepTrace): void;
  /** Replaces every trace (start of a run: [], end: the result's traces); the run's shot ids and captions are kept when not given. */
  setTraces(traces: StepTrace[], shotIds?: string[], captions?: string[]): void;
  setRoutingStats(stats: RoutingStats | null): void;
  /** A run starts: its traces replace the shown ones when its first trace arrives (`pushTrace`), not before. */
  beginRouting(shotIds: string[], captions: string[]): void;
  /** The run ended without a trace (cancelled, failed): forget it, keep what is shown. */
  abandonRouting(): void;
  setRoutingOrigin(origin: RoutingOrigin | null): void;
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
    next: null,
    origin: null,
  },
  pushTrace: (trace) =>
    set((s) => {
      const r = s.routing;
      if (!r.next)
        return {
          routing: {
            ...r,
            traces: [...r.traces.filter((t) => t.step !== trace.step), trace].sort((a, b) => a.step - b.step),
          },
        };
      // the new run's first trace: it replaces the previous run's
      return {
        routing: {
          ...withTraces(r, [trace]),
          shotIds: r.next.shotIds,
          captions: r.next.captions,
          next: null,
          origin: null,
        },
      };
    }),
  setTraces: (traces, shotIds, captions) =>
    set((s) => ({
      routing: {
        ...withTraces(s.routing, traces),
        shotIds: shotIds ?? s.routing.shotIds,
        captions: captions ?? s.routing.captions,
        next: null,
      },
    })),
  setRoutingStats: (stats) => set((s) => ({ routing: { ...s.routing, stats } })),
  beginRouting: (shotIds, captions) => set((s) => ({ routing: { ...s.routing, next: { shotIds, captions } } })),
  abandonRouting: () => set((s) => (s.routing.next ? { routing: { ...s.routing, next: null } } : s)),
  setRoutingOrigin: (origin) => set((s) => ({ routing: { ...s.routing, origin } })),
  setFilter: (patch) => set((s) => ({ routing: { ...s.routing, filter: { ...s.routing.filter, ...patch } } })),
  setShowMandatory: (showMandatory) => set((s) => ({ routing: { ...s.routing, showMandatory } })),
  hoverChunk: (hovered) => set((s) => (s.routing.hovered === hovered ? s : { routing: { ...s.routing, hovered } })),
  pinChunk: (pinned) => set((s) => ({ routing: { ...s.routing, pinned } })),
});

/** `r` showing `traces`: the pin kept where the new chunk table still has that chunk, the hover dropped. */
function withTraces(r: RoutingSlice['routing'], traces: StepTrace[]): RoutingSlice['routing'] {
  const C = traces[traces.length - 1]?.chunks.start.length ?? 0;
  const keepPin = r.pinned !== null && r.pinned < C;
  return { ...r, traces, pinned: keepPin ? r.pinned : null, hovered: null };
}
