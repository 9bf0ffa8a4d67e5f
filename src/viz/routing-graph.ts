/**
 * Connects the routing scene to the store: a transient `store.subscribe` (no React re-render)
 * turns the routing slice into a RoutingView whenever traces, filters, hover or pin change, and
 * the scene's pointer events go back to the store. The UI mounts it into a div and unmounts it.
 */
import { useStudio, type StudioState } from '../state/store.ts';
import { layoutDag, mandatoryEdges, routedEdges, traceAt, type DagLayout } from './dag-layout.ts';
import { RoutingScene } from './routing-scene.ts';

/**
 * Mounts the graph into `container`. Returns the unmount function. When WebGL is unavailable
 * it writes a one-line explanation into `container` instead (and the rest of the panel — stats,
 * score chart — still works).
 */
export function mountRoutingGraph(container: HTMLElement, store = useStudio): () => void {
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
    return () => p.remove();
  }

  let cached: { key: unknown; tpf: number | undefined; layout: DagLayout } | null = null;
  const draw = (s: StudioState): void => {
    const r = s.routing;
    const trace = traceAt(r.traces, r.filter.step);
    if (!trace) {
      scene.update({ layout: { nodes: [], shots: [], bounds: { x0: 0, x1: 1, y0: -1, y1: 1 } }, edges: [], mandatory: [], hovered: null, pinned: null, shotLabel: () => '' });
      return;
    }
    const info = s.model.info;
    const tpf = info ? (info.imageSize / info.patchSize) ** 2 : undefined;
    if (cached?.key !== trace.chunks || cached.tpf !== tpf) cached = { key: trace.chunks, tpf, layout: layoutDag(trace.chunks, tpf) };
    scene.update({
      layout: cached.layout,
      edges: routedEdges(trace, r.filter),
      mandatory: r.showMandatory ? mandatoryEdges(trace) : [],
      hovered: r.hovered,
      pinned: r.pinned,
      shotLabel: (shot) => shotName(s, r.shotIds[shot], shot),
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
  return () => {
    unsub();
    ro.disconnect();
    scene.dispose();
  };
}

/** "Shot 2" by the shot's current place in the board (it may have moved since the run). */
function shotName(s: StudioState, id: string | undefined, shot: number): string {
  const now = id ? s.shotIds.indexOf(id) : -1;
  return `Shot ${(now >= 0 ? now : shot) + 1}`;
}
