import { useEffect, useMemo, useRef } from 'react';
import type { StepTrace } from '../model/api.ts';
import { useStudio } from '../state/store.ts';
import { edgesOf, frameUnit, routedEdges, scoreProfile, traceAt } from '../viz/dag-layout.ts';
import { memoryShare, memoryShotSet, memoryShots, type CharacterMemory, type MemoryShare } from '../viz/shot-memory.ts';
import { formatFlops, formatMs, formatPercent } from './format.ts';
import { ScoreChart } from './ScoreChart.tsx';

/**
 * The routing DAG: chunks on the timeline, routed edges weighted by how many queries took
 * them, filters, the run's sparsity / FLOPs / time per step, and the pinned chunk's scores.
 * The three.js scene lives in src/viz and updates itself from the store.
 */
export function RoutingGraph() {
  const hostRef = useRef<HTMLDivElement>(null);
  const traces = useStudio((s) => s.routing.traces);
  const filter = useStudio((s) => s.routing.filter);
  const hasTraces = traces.length > 0;

  useEffect(() => {
    const el = hostRef.current;
    if (!el) return;
    // three.js is most of the page's script: load it after the first render.
    let unmount: (() => void) | null = null;
    let gone = false;
    void import('../viz/routing-graph.ts').then(({ mountRoutingGraph }) => {
      if (!gone) unmount = mountRoutingGraph(el);
    });
    return () => {
      gone = true;
      unmount?.();
    };
  }, []);

  return (
    <section className="panel routing" role="region" aria-labelledby="routing-title">
      <header className="panel-header">
        <h2 id="routing-title">Routing graph</h2>
        <span className="muted small-text">Which earlier chunks each chunk’s queries attend to (MoC top-k routing)</span>
      </header>
      <CausalLegend />
      <Filters traces={traces} />
      <div className="routing-body">
        <div className="routing-stage">
          <div className="routing-host" ref={hostRef} />
          {!hasTraces && <p className="routing-empty muted">Generate to see the routes. Each box is a chunk (a caption, or {''}frames of a shot); arcs go from a chunk to the chunks its queries routed to.</p>}
          {hasTraces && filter.step >= 0 && !traces.some((t) => t.step === filter.step) && <p className="routing-empty muted">No trace at that step.</p>}
        </div>
        <aside className="routing-side">
          <Stats />
          <Inspector />
        </aside>
      </div>
    </section>
  );
}

/**
 * Whether the arcs are the whole story: with a causal-text model (and causal routing) no
 * information flows from a later shot to an earlier one; otherwise every query also sees every
 * shot's caption, a link back in time that the mandatory links show.
 */
function CausalLegend() {
  const causalText = useStudio((s) => s.model.info?.causalText);
  const causal = useStudio((s) => s.settings.attention.causal && s.settings.attention.mode === 'moc');
  if (causalText === undefined) return null;
  return (
    <p className="muted small-text routing-legend" data-testid="causal-legend">
      {causalText && causal
        ? 'Context-causal model: a shot sees only its own and earlier shots’ captions and frames, so no information flows backward — later shots never change earlier ones.'
        : 'Every query also sees every shot’s caption, including later shots’: those caption links (tick “Mandatory links”) carry information backward in time, beyond the arcs drawn.'}
    </p>
  );
}

function Filters({ traces }: { traces: StepTrace[] }) {
  const filter = useStudio((s) => s.routing.filter);
  const setFilter = useStudio((s) => s.setFilter);
  const showMandatory = useStudio((s) => s.routing.showMandatory);
  const setShowMandatory = useStudio((s) => s.setShowMandatory);
  const last = traces[traces.length - 1];
  const layers = last?.layers.length ?? 0;
  const heads = last?.layers[0]?.H ?? 0;
  return (
    <div className="toolbar routing-filters" role="group" aria-label="Routing filters">
      <label className="select-field inline">
        <span className="field-caption">Step</span>
        <select aria-label="Step" value={filter.step} onChange={(e) => setFilter({ step: Number(e.target.value) })}>
          <option value={-1}>latest{last ? ` (step ${last.step})` : ''}</option>
          {traces.map((t) => (
            <option key={t.step} value={t.step}>
              step {t.step}
            </option>
          ))}
        </select>
      </label>
      <label className="select-field inline">
        <span className="field-caption">Layer</span>
        <select aria-label="Layer" value={filter.layer} onChange={(e) => setFilter({ layer: Number(e.target.value) })}>
          <option value={-1}>all (sum)</option>
          {Array.from({ length: layers }, (_, l) => (
            <option key={l} value={l}>
              layer {l + 1}
            </option>
          ))}
        </select>
      </label>
      <label className="select-field inline">
        <span className="field-caption">Head</span>
        <select aria-label="Head" value={filter.head} onChange={(e) => setFilter({ head: Number(e.target.value) })}>
          <option value={-1}>all (sum)</option>
          {Array.from({ length: heads }, (_, h) => (
            <option key={h} value={h}>
              head {h + 1}
            </option>
          ))}
        </select>
      </label>
      <label className="check-field">
        <input type="checkbox" checked={showMandatory} onChange={(e) => setShowMandatory(e.target.checked)} />
        <span>Mandatory links</span>
      </label>
    </div>
  );
}

function Stats() {
  const stats = useStudio((s) => s.routing.stats);
  const mode = useStudio((s) => s.settings.attention.mode);
  if (!stats) return <p className="muted small-text">No run yet.</p>;
  const ratio = stats.flopsVisited > 0 ? stats.flopsDense / stats.flopsVisited : null;
  return (
    <dl className="stats">
      <div>
        <dt>Sparsity</dt>
        <dd>{formatPercent(stats.sparsity)}</dd>
      </div>
      <div>
        <dt>Attention FLOPs</dt>
        <dd>{stats.flopsVisited > 0 ? `${formatFlops(stats.flopsVisited)} vs ${formatFlops(stats.flopsDense)} dense${ratio ? ` (${ratio.toFixed(1)}× less)` : ''}` : stats.live ? 'when finished' : '—'}</dd>
      </div>
      <div>
        <dt>Time per step</dt>
        <dd>{stats.msPerStep !== null ? formatMs(stats.msPerStep) : '—'}</dd>
      </div>
      {stats.reused && (
        <div>
          <dt>Cache</dt>
          <dd data-testid="cache-reused">{stats.reused}</dd>
        </div>
      )}
      {stats.live && <p className="live small-text">live · {mode}</p>}
    </dl>
  );
}

function Inspector() {
  const r = useStudio((s) => s.routing);
  const a = useStudio((s) => s.settings.attention);
  const shotIds = useStudio((s) => s.shotIds);
  const pin = useStudio((s) => s.pinChunk);
  const trace = traceAt(r.traces, r.filter.step);
  const chunk = r.pinned ?? r.hovered;
  const tpf = useStudio((s) => (s.model.info ? (s.model.info.imageSize / s.model.info.patchSize) ** 2 : 0));
  const shotNo = useMemo(() => shotNumberer(r.shotIds, shotIds), [r.shotIds, shotIds]);
  const label = useMemo(() => (trace ? chunkLabeler(trace, shotNo, tpf || frameUnit(trace.chunks)) : () => ''), [trace, shotNo, tpf]);
  const profile = useMemo(() => (trace && chunk !== null && chunk < trace.chunks.start.length ? scoreProfile(trace, chunk, r.filter, a.topK, a.causal) : null), [trace, chunk, r.filter, a.topK, a.causal]);
  const routes = useMemo(() => (trace && chunk !== null ? edgesOf(routedEdges(trace, r.filter), chunk) : null), [trace, chunk, r.filter]);
  // the earlier shots that show the pinned video chunk's characters, and how much of its routing lands there
  const memory = useMemo(() => {
    if (!trace || !profile || trace.chunks.kind[profile.chunk] !== 1) return null;
    const chars = memoryShots(r.captions, trace.chunks.shot[profile.chunk]);
    const shots = memoryShotSet(chars);
    const notes = new Map<number, string>();
    trace.chunks.chunks.forEach((c, i) => {
      if (c.kind !== 'video' || !shots.includes(c.shot)) return;
      const who = chars.filter((m) => m.shots.includes(c.shot)).map((m) => m.character);
      notes.set(i, `shows character${who.length > 1 ? 's' : ''} ${who.join(', ')} of the pinned shot`);
    });
    return { chars, notes, share: shots.length ? memoryShare(trace.chunks, profile, shots) : null };
  }, [trace, profile, r.captions]);
  if (!trace) return null;
  const C = trace.chunks.start.length;

  return (
    <div className="inspector">
      <label className="select-field">
        <span className="field-caption">Pinned chunk</span>
        <select aria-label="Pinned chunk" value={r.pinned ?? -1} onChange={(e) => pin(Number(e.target.value) < 0 ? null : Number(e.target.value))}>
          <option value={-1}>none (hover or click a box)</option>
          {Array.from({ length: C }, (_, c) => (
            <option key={c} value={c}>
              {label(c)}
            </option>
          ))}
        </select>
      </label>
      {profile && routes && chunk !== null && (
        <div className="inspector-body" aria-live="polite">
          <p className="small-text">
            <strong>{label(chunk)}</strong> · {trace.chunks.end[chunk] - trace.chunks.start[chunk]} tokens · routes to {routes.outgoing.length} chunk{routes.outgoing.length === 1 ? '' : 's'}, routed to from {routes.incoming.length}
            {r.pinned === null && <span className="muted"> (hover; click to pin)</span>}
          </p>
          <ScoreChart
            profile={profile}
            topK={a.topK}
            chunkLabel={label}
            shortLabel={(c) => short(label(c))}
            marks={memory ? { notes: memory.notes, legend: 'character’s earlier shot' } : undefined}
          />
          {memory && <MemoryLine chars={memory.chars} share={memory.share} shotNo={shotNo} causal={a.causal} />}
          {routes.outgoing.length > 0 && (
            <p className="small-text muted">
              Top routes: {routes.outgoing.slice(0, 4).map((e) => `${label(e.to)} ${formatPercent(e.share)}`).join(' · ')}
            </p>
          )}
        </div>
      )}
    </div>
  );
}

/**
 * One line under the score chart: where the pinned shot's characters were seen before and the
 * share of its routed picks that goes there, against uniform routing; a quiet line when its
 * characters are all new, nothing for a shot without characters.
 */
function MemoryLine({ chars, share, shotNo, causal }: { chars: CharacterMemory[]; share: MemoryShare | null; shotNo: (s: number) => number; causal: boolean }) {
  const seen = chars.filter((m) => m.shots.length > 0);
  if (!chars.length) return null;
  if (!seen.length || !share) {
    const ids = chars.map((m) => m.character);
    return (
      <p className="small-text muted">
        {ids.length === 1 ? `Character ${ids[0]} first appears in this shot.` : `Characters ${listWords(ids.map(String))} first appear in this shot.`}
      </p>
    );
  }
  const where = seen.map((m, i) => {
    const nos = m.shots.map(shotNo).sort((x, y) => x - y);
    return `${i === 0 ? 'Character' : 'character'} ${m.character} ${i === 0 ? 'was ' : ''}in shot${nos.length > 1 ? 's' : ''} ${listWords(nos.map(String))}`;
  });
  const pct = (v: number | null): string => (v === null ? '—' : formatPercent(v));
  const how = `Of the routed picks of this chunk’s query tokens (each picks its top-k chunks, in every selected layer and head), the share that lands in frames of those shots; uniform routing would give those shots’ share of the ${causal ? 'earlier frames of other shots' : 'frames of other shots'}.`;
  return (
    <p className="small-text" role="note" aria-label="Character memory" title={how}>
      {where.join('; ')} · routes there: <strong>{share.routed === null ? 'no picks' : `${pct(share.routed)} of picks`}</strong>{' '}
      <span className="muted">
        (uniform over {causal ? 'earlier' : 'candidate'} frames: {pct(share.uniform)})
      </span>
    </p>
  );
}

/** ["1"] → "1", ["1", "2"] → "1 and 2", ["1", "2", "4"] → "1, 2 and 4". */
function listWords(items: string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** "Global caption" → "G", "Shot 2 caption" → "T2", "Shot 2 · frame 3" (or "frames 3–4") → "2·3". */
function short(label: string): string {
  if (label === 'Global caption') return 'G';
  const m = /^Shot (\d+)(?: caption| · frames? (\d+))/.exec(label);
  if (!m) return '';
  return m[2] ? `${m[1]}·${m[2]}` : `T${m[1]}`;
}

/** The number (from 1) the storyboard now gives the run's shot s (its run position when the shot is gone). */
function shotNumberer(runIds: string[], nowIds: string[]): (s: number) => number {
  return (s) => {
    const now = runIds[s] ? nowIds.indexOf(runIds[s]) : -1;
    return (now >= 0 ? now : s) + 1;
  };
}

/** "Global caption", "Shot 2 caption", "Shot 2 · frames 3–4". */
function chunkLabeler(trace: StepTrace, shotNo: (s: number) => number, unit: number): (c: number) => string {
  const first = new Map<number, number>();
  const frames: number[] = [];
  trace.chunks.chunks.forEach((c, i) => {
    if (c.kind !== 'video') return;
    if (!first.has(c.shot)) first.set(c.shot, 0);
    frames[i] = first.get(c.shot)!;
    first.set(c.shot, frames[i] + (c.end - c.start) / unit);
  });
  return (i) => {
    const c = trace.chunks.chunks[i];
    if (!c) return '';
    const shot = `Shot ${shotNo(c.shot)}`;
    if (c.kind === 'text') return c.shot < 0 ? 'Global caption' : `${shot} caption`;
    const f0 = frames[i] + 1;
    const f1 = frames[i] + (c.end - c.start) / unit;
    return f0 === f1 ? `${shot} · frame ${f0}` : `${shot} · frames ${f0}–${f1}`;
  };
}
