/**
 * Connects the routing scene to the store: a transient `store.subscribe` (no React re-render)
 * turns the routing slice into a RoutingView whenever traces, filters, hover or pin change, and
 * the scene's pointer and keyboard events go back to the store. The UI mounts it into a div and
 * gets back the controls it needs (unmount, zoom, fit).
 */
import { useStudio, type StudioState } from '../state/store.ts';
import type { StepTrace } from '../model/api.ts';
import { chunkNamer } from './chunk-names.ts';
import {
  frameUnit,
  layoutDag,
  mandatoryEdges,
  routedEdges,
  traceAt,
  type DagEdge,
  type DagLayout,
} from './dag-layout.ts';
import { RoutingScene } from './routing-scene.ts';

export interface RoutingGraphHandle {
  unmount(): void;
  /** Zoom about the centre (factor > 1: in); no-op without WebGL. */
  zoomBy(factor: number): void;
  /** The whole graph in view again. */
  resetView(): void;
}

/**
 * Mounts the graph into `container`. When WebGL is unavailable it writes a one-line explanation
 * into `container` instead (and the rest of the panel — stats, score chart — still works).
 */
export function mountRoutingGraph(container: HTMLElement, store = useStudio): RoutingGraphHandle {
  let scene: RoutingScene;
  try {
    scene = new RoutingScene(container, {
      onHover: (chunk) => store.getState().hoverChunk(chunk),
      onClick: (chunk) => store.getState().pinChunk(chunk === store.getState().routing.pinned ? null : chunk),
    });
  } catch (e) {
    const p = document.createElement('p');
    p.className = 'routing-fallback';
    p.textContent = `The graph needs WebGL, which this browser did not give (${(e as Error).message}). The numbers beside it still update.`;
    container.append(p);
    return { unmount: () => p.remove(), zoomBy: () => undefined, resetView: () => undefined };
  }

  let cached: { key: unknown; tpf: number | undefined; layout: DagLayout } | null = null;
  let edgesCached: { trace: StepTrace; layer: number; head: number; edges: DagEdge[] } | null = null;
  const draw = (s: StudioState): void => {
    const r = s.routing;
    const trace = traceAt(r.traces, r.filter.step);
    if (!trace) {
      scene.update({
        layout: EMPTY,
        edges: [],
        mandatory: [],
        hovered: null,
        pinned: null,
        shotLabel: () => '',
        chunkLabel: () => '',
      });
      return;
    }
    const info = s.model.info;
    const tpf = info ? (info.imageSize / info.patchSize) ** 2 : undefined;
    if (cached?.key !== trace.chunks || cached.tpf !== tpf)
      cached = { key: trace.chunks, tpf, layout: layoutDag(trace.chunks, tpf) };
    const { layer, head } = r.filter;
    if (edgesCached?.trace !== trace || edgesCached.layer !== layer || edgesCached.head !== head)
      edgesCached = { trace, layer, head, edges: routedEdges(trace, r.filter) };
    const shotNo = (shot: number): number => shotNumber(s, r.shotIds[shot], shot);
    scene.update({
      layout: cached.layout,
      edges: edgesCached.edges,
      mandatory: r.showMandatory ? mandatoryEdges(trace) : [],
      hovered: r.hovered,
      pinned: r.pinned,
      shotLabel: (shot) => `Shot ${shotNo(shot)}`,
      chunkLabel: chunkNamer(trace.chunks.chunks, tpf ?? frameUnit(trace.chunks), shotNo),
    });
  };

  const ro = new ResizeObserver(([entry]) => {
    scene.resize(entry.contentRect.width, entry.contentRect.height);
  });
  ro.observe(container);
  const rect = container.getBoundingClientRect();
  scene.resize(rect.width, rect.height);
  draw(store.getState());
  const unsub = store.subscribe((s, prev) => {
    if (s.routing !== prev.routing || s.shotIds !== prev.shotIds) draw(s);
  });
  return {
    unmount: () => {
      unsub();
      ro.disconnect();
      scene.dispose();
    },
    zoomBy: (f) => scene.zoomBy(f),
    resetView: () => scene.resetView(),
  };
}

const EMPTY: DagLayout = { nodes: [], shots: [], bounds: { x0: 0, x1: 1, y0: -1, y1: 1 } };

/** The number (from 1) of the run's shot `shot` by its current place in the board (it may have moved since the run; its run place when gone). */
export function shotNumber(s: StudioState, id: string | undefined, shot: number): number {
  const now = id ? s.shotIds.indexOf(id) : -1;
  return (now >= 0 ? now : shot) + 1;
}
