/**
 * Routing actions: keep a finished run's traces with its takes (routing-persist.ts), show them
 * again after a reload, and export what the graph shows as routing.json (the CLI's format).
 */
import type { AttentionOptions, StepTrace } from '../../model/api.ts';
import { routingSummary } from '../../model/routing-json.ts';
import { loadForRestore } from '../persist.ts';
import * as stored from '../routing-persist.ts';
import type { RoutingStats } from '../slices/routing.ts';
import { useStudio } from '../store.ts';

/** Writes of the routing record, one after another (a run's save is never overtaken by the next's). */
let writes: Promise<unknown> = Promise.resolve();

/**
 * Keeps a finished run's routing with the takes it made. Never throws: a failure (or a run too
 * large to keep) is said in the save indicator's message; the board and takes are not touched.
 */
export function keepRouting(run: {
  takeIds: string[];
  shotIds: string[];
  captions: string[];
  attention: AttentionOptions;
  stats: RoutingStats;
  traces: StepTrace[];
}): Promise<void> {
  if (useStudio.getState().save.state === 'off' || !run.traces.length) return writes.then(() => undefined);
  const next = writes.then(async () => {
    try {
      const saved = await stored.saveRouting(run);
      const st = useStudio.getState();
      if ('reason' in saved)
        st.setSave(st.save.state, `The routing graph of this run is not kept across reloads: ${saved.reason}.`);
      else if (saved.kept < saved.of)
        st.setRoutingOrigin({ attention: run.attention, restored: false, stepsOf: saved.of });
    } catch (e) {
      const st = useStudio.getState();
      st.setSave(st.save.state, `The routing graph could not be kept: ${(e as Error).message}`);
    }
  });
  writes = next;
  return next;
}

/**
 * Shows the saved routing again (after `restoreStudio` has put the takes back) when one of the
 * takes it was made with is still kept. Returns a one-line problem, or null; never throws.
 */
export async function restoreRouting(): Promise<string | null> {
  const got = await loadForRestore('The routing graph', stored.loadRouting);
  if ('problem' in got) return got.problem;
  const rec = got.value;
  const st = useStudio.getState();
  if (!rec || st.routing.traces.length) return null;
  const kept = new Set(Object.values(st.takes).flatMap((ts) => ts.map((t) => t.id)));
  if (!rec.takeIds.some((id) => kept.has(id))) return null;
  st.setTraces(rec.traces, rec.shotIds, rec.captions);
  st.setRoutingStats({ ...rec.stats, live: false });
  st.setRoutingOrigin({
    attention: rec.attention,
    restored: true,
    stepsOf: rec.tracedSteps > rec.traces.length ? rec.tracedSteps : null,
  });
  return null;
}

/** routing.json of the traces the graph shows (the CLI's `moc generate` format), or null when there are none. */
export function routingJson(): Blob | null {
  const st = useStudio.getState();
  const r = st.routing;
  if (!r.traces.length || !r.stats) return null;
  const attention = r.origin?.attention ?? st.settings.attention;
  const heads = r.traces[r.traces.length - 1].layers[0]?.H ?? 0;
  const summary = routingSummary(
    {
      traces: r.traces,
      sparsity: r.stats.sparsity,
      attentionFlops: { visited: r.stats.flopsVisited, dense: r.stats.flopsDense },
    },
    attention,
    heads,
  );
  return new Blob([JSON.stringify(summary)], { type: 'application/json' });
}
