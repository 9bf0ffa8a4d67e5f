import { useEffect, useMemo, useRef } from 'react';
import type { StepTrace } from '../model/api.ts';
import { download } from '../state/actions/export.ts';
import { routingJson } from '../state/actions/routing.ts';
import { useStudio } from '../state/store.ts';
import { chunkNamer, shortChunkName } from '../viz/chunk-names.ts';
import { edgesOf, frameUnit, headOverview, routedEdges, scoreProfile, traceAt } from '../viz/dag-layout.ts';
import { headColor } from '../viz/labels.ts';
import type { RoutingGraphHandle } from '../viz/routing-graph.ts';
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
  const graph = useRef<RoutingGraphHandle | null>(null);
  const traces = useStudio((s) => s.routing.traces);
  const filter = useStudio((s) => s.routing.filter);
  const hasTraces = traces.length > 0;

  useEffect(() => {
    const el = hostRef.current;
    if (!el) return;
    // three.js is most of the page's script: load it after the first render.
    let gone = false;
    void import('../viz/routing-graph.ts').then(({ mountRoutingGraph }) => {
      if (!gone) graph.current = mountRoutingGraph(el);
    });
    return () => {
      gone = true;
      graph.current?.unmount();
      graph.current = null;
    };
  }, []);

  return (
    <section className="panel routing" role="region" aria-labelledby="routing-title">
      <header className="panel-header">
        <h2 id="routing-title">Routing graph</h2>
        <span className="muted small-text">
          Which earlier chunks each chunk’s queries attend to (MoC top-k routing) · <DocLinks />
        </span>
      </header>
      <CausalLegend />
      <Filters traces={traces} graph={graph} />
      <div className="routing-body">
        <div className="routing-main">
          <div className="routing-stage">
            <div className="routing-host" ref={hostRef} />
            {!hasTraces && (
              <p className="routing-empty muted">
                Generate to see the routes. Each box is a chunk (a caption, or frames of a shot); arcs go from a chunk
                to the chunks its queries routed to.
              </p>
            )}
            {hasTraces && filter.step >= 0 && !traces.some((t) => t.step === filter.step) && (
              <p className="routing-empty muted">No trace at that step.</p>
            )}
          </div>
          <Legend traces={traces} />
        </div>
        <aside className="routing-side">
          <Stats />
          <RunNote />
          <Overview />
          <Inspector />
        </aside>
      </div>
    </section>
  );
}

/** Links to the documents behind the views: the model card and the method (shipped beside the page). */
export function DocLinks() {
  return (
    <>
      <a
        href="docs/MOC.md"
        target="_blank"
        rel="noopener"
        title="Mixture of Contexts: chunks, mandatory links, descriptor scores, top-k and the causal mask, as this studio implements them"
      >
        the method
      </a>
      {' · '}
      <a
        href="docs/MODEL_CARD.md"
        target="_blank"
        rel="noopener"
        title="What the shipped models were trained on, how they were evaluated and what they cannot do"
      >
        model card
      </a>
    </>
  );
}

/** What the shapes and colours of the graph mean, and how to move in it. */
function Legend({ traces }: { traces: StepTrace[] }) {
  const filter = useStudio((s) => s.routing.filter);
  const heads = traces[traces.length - 1]?.layers[0]?.H ?? 0;
  const shown = filter.head >= 0 ? [filter.head] : Array.from({ length: heads }, (_, h) => h);
  return (
    <div className="routing-legend small-text" role="note" aria-label="How to read the graph">
      <span className="legend-item">
        <span className="key key-box" /> box: a chunk (top row captions, bottom row frames; one colour a shot)
      </span>
      <span className="legend-item">
        <span className="key key-arc" /> arc below: a chunk’s queries → a chunk they routed to; wider and brighter = a
        larger share of its queries
      </span>
      {shown.length > 0 && (
        <span className="legend-item">
          arc colour: the head that routed most of it{' '}
          {shown.map((h) => (
            <span key={h} className="head-chip" style={{ background: headColor(h) }} title={`head ${h + 1}`}>
              {h + 1}
            </span>
          ))}
        </span>
      )}
      <span className="legend-item">
        <span className="key key-out" /> routes of the chunk in focus <span className="key key-in" /> routes into it
      </span>
      <span className="legend-item">
        <span className="key key-mand" /> arc above: mandatory link (always attended)
      </span>
      <span className="legend-item muted">wheel zooms, drag pans; Tab to the chunks, arrows move, Enter pins</span>
    </div>
  );
}

/** Says when the graph shows a restored, summarised or previous run rather than the one under way. */
function RunNote() {
  const r = useStudio((s) => s.routing);
  const notes: string[] = [];
  if (r.next && r.traces.length) notes.push('Showing the last finished run until this run’s first trace arrives.');
  if (r.origin?.restored) notes.push('Restored from this browser’s storage (saved with the run’s takes).');
  if (r.origin?.stepsOf)
    notes.push(`Kept ${r.traces.length} of its ${r.origin.stepsOf} traced steps (the latest), to stay within storage.`);
  if (!notes.length) return null;
  return <p className="small-text muted routing-note">{notes.join(' ')}</p>;
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
    <p className="muted small-text routing-causal-note" data-testid="causal-legend">
      {causalText && causal
        ? 'Context-causal model: a shot sees only its own and earlier shots’ captions and frames, so no information flows backward — later shots never change earlier ones.'
        : 'Every query also sees every shot’s caption, including later shots’: those caption links (tick “Mandatory links”) carry information backward in time, beyond the arcs drawn.'}
    </p>
  );
}

function Filters({ traces, graph }: { traces: StepTrace[]; graph: { current: RoutingGraphHandle | null } }) {
  const showMandatory = useStudio((s) => s.routing.showMandatory);
  const setShowMandatory = useStudio((s) => s.setShowMandatory);
  const live = useStudio((s) => s.routing.stats?.live ?? false);
  const last = traces[traces.length - 1];
  const layers = last?.layers.length ?? 0;
  const heads = last?.layers[0]?.H ?? 0;
  const exportJson = (): void => {
    const blob = routingJson();
    if (blob) download(blob, 'routing.json');
  };
  return (
    <div className="toolbar routing-filters" role="group" aria-label="Routing filters">
      <FilterSelect
        field="step"
        first={`latest${last ? ` (step ${last.step})` : ''}`}
        options={traces.map((t) => [t.step, `step ${t.step}`])}
      />
      <FilterSelect field="layer" options={numbered(layers, 'layer')} />
      <FilterSelect field="head" options={numbered(heads, 'head')} />
      <label
        className="check-field"
        title="Draw the links every query attends to without routing (the captions and its own shot) as grey arcs above the boxes."
      >
        <input type="checkbox" checked={showMandatory} onChange={(e) => setShowMandatory(e.target.checked)} />
        <span>Mandatory links</span>
      </label>
      <span className="toolbar-sep" />
      <span className="zoom-buttons" role="group" aria-label="Zoom">
        <button
          type="button"
          aria-label="Zoom in"
          title="Zoom in (or the mouse wheel over the graph)"
          onClick={() => graph.current?.zoomBy(1.5)}
        >
          +
        </button>
        <button type="button" aria-label="Zoom out" title="Zoom out" onClick={() => graph.current?.zoomBy(1 / 1.5)}>
          −
        </button>
        <button type="button" title="Show the whole graph again" onClick={() => graph.current?.resetView()}>
          Fit
        </button>
      </span>
      <button
        type="button"
        disabled={!traces.length || live}
        onClick={exportJson}
        title="Download the routing shown as routing.json, the format `moc generate` writes: the chunk table and, per traced step and layer, the routed edges summed over heads"
      >
        Export routing.json
      </button>
    </div>
  );
}

const FILTER_TITLES = {
  step: 'The sampler step whose routing is drawn. Routing changes as the video sharpens: early steps route on noise, the last on the finished frames.',
  layer:
    'The transformer layer whose routing is drawn; “all” sums the routes of every layer (each layer routes on its own).',
  head: 'The attention head whose routing is drawn; “all” sums every head (each head picks its own top-k chunks). Arcs take the colour of the head that routed most of them.',
};

/** [i, `${word} ${i + 1}`] for i < n: the choices of a layer or head filter. */
function numbered(n: number, word: string): [number, string][] {
  return Array.from({ length: n }, (_, i) => [i, `${word} ${i + 1}`]);
}

/** One routing filter: −1 (labelled `first`) or one of `options`, given as [value, text]. */
function FilterSelect({
  field,
  first = 'all (sum)',
  options,
}: {
  field: keyof typeof FILTER_TITLES;
  first?: string;
  options: [number, string][];
}) {
  const value = useStudio((s) => s.routing.filter[field]);
  const setFilter = useStudio((s) => s.setFilter);
  const name = field[0].toUpperCase() + field.slice(1);
  return (
    <label className="select-field inline" title={FILTER_TITLES[field]}>
      <span className="field-caption">{name}</span>
      <select aria-label={name} value={value} onChange={(e) => setFilter({ [field]: Number(e.target.value) })}>
        <option value={-1}>{first}</option>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

/**
 * The layer × head overview: a cell per layer and head with its sparsity, or — with a chunk in
 * focus — the chunk its queries routed to most there. Clicking a cell draws that layer and head.
 */
function Overview() {
  const r = useStudio((s) => s.routing);
  const setFilter = useStudio((s) => s.setFilter);
  const shotIds = useStudio((s) => s.shotIds);
  const tpf = useStudio((s) => (s.model.info ? (s.model.info.imageSize / s.model.info.patchSize) ** 2 : 0));
  const trace = traceAt(r.traces, r.filter.step);
  const focus = r.pinned ?? r.hovered;
  const name = useMemo(
    () =>
      trace
        ? chunkNamer(trace.chunks.chunks, tpf || frameUnit(trace.chunks), shotNumberer(r.shotIds, shotIds))
        : () => '',
    [trace, tpf, r.shotIds, shotIds],
  );
  const cells = useMemo(() => (trace ? headOverview(trace, focus) : []), [trace, focus]);
  if (!trace || !cells.length) return null;
  const L = trace.layers.length;
  const H = trace.layers[0].H;
  const routesOf = focus !== null && trace.chunks.kind[focus] === 1;
  return (
    <figure className="overview">
      <figcaption className="small-text muted">
        Layers × heads:{' '}
        {routesOf
          ? `where ${name(focus!)} routes most in each (share of its queries)`
          : 'the share of attention pairs each one skips'}
        . Click a cell to draw only it.
      </figcaption>
      <table className="overview-grid">
        <thead>
          <tr>
            <th scope="col">
              <button
                type="button"
                className={r.filter.layer < 0 && r.filter.head < 0 ? 'on' : ''}
                onClick={() => setFilter({ layer: -1, head: -1 })}
                title="All layers and heads, summed"
              >
                all
              </button>
            </th>
            {Array.from({ length: H }, (_, h) => (
              <th key={h} scope="col">
                <button
                  type="button"
                  className={r.filter.layer < 0 && r.filter.head === h ? 'on' : ''}
                  style={{ color: headColor(h) }}
                  onClick={() => setFilter({ layer: -1, head: h })}
                  title={`Head ${h + 1} in every layer`}
                >
                  h{h + 1}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: L }, (_, l) => (
            <tr key={l}>
              <th scope="row">
                <button
                  type="button"
                  className={r.filter.layer === l && r.filter.head < 0 ? 'on' : ''}
                  onClick={() => setFilter({ layer: l, head: -1 })}
                  title={`Layer ${l + 1}, every head`}
                >
                  L{l + 1}
                </button>
              </th>
              {cells
                .filter((c) => c.layer === l)
                .map((c) => {
                  const on = r.filter.layer === l && r.filter.head === c.head;
                  const text = routesOf
                    ? c.top === null
                      ? '—'
                      : shortChunkName(name(c.top))
                    : `${Math.round(c.sparsity * 100)}%`;
                  const tip = routesOf
                    ? c.top === null
                      ? `Layer ${l + 1}, head ${c.head + 1}: ${name(focus!)} routes nowhere`
                      : `Layer ${l + 1}, head ${c.head + 1}: ${name(focus!)} routes most to ${name(c.top)} (${formatPercent(c.topShare)} of its queries)`
                    : `Layer ${l + 1}, head ${c.head + 1}: sparsity ${formatPercent(c.sparsity)}`;
                  return (
                    <td key={c.head}>
                      <button
                        type="button"
                        className={on ? 'on' : ''}
                        aria-label={tip}
                        title={tip}
                        style={{
                          borderColor: headColor(c.head),
                          opacity: routesOf ? 0.45 + 0.55 * c.topShare : 0.45 + 0.55 * c.sparsity,
                        }}
                        onClick={() => setFilter(on ? { layer: -1, head: -1 } : { layer: l, head: c.head })}
                      >
                        {text}
                      </button>
                    </td>
                  );
                })}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
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
        <dd>
          {stats.flopsVisited > 0
            ? `${formatFlops(stats.flopsVisited)} vs ${formatFlops(stats.flopsDense)} dense${ratio ? ` (${ratio.toFixed(1)}× less)` : ''}`
            : stats.live
              ? 'when finished'
              : '—'}
        </dd>
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
  const label = useMemo(
    () => (trace ? chunkNamer(trace.chunks.chunks, tpf || frameUnit(trace.chunks), shotNo) : () => ''),
    [trace, shotNo, tpf],
  );
  // the top-k and causality of the run drawn (the panel's settings may have changed since)
  const topK = r.origin?.attention.topK ?? a.topK;
  const causal = r.origin?.attention.causal ?? a.causal;
  const profile = useMemo(
    () =>
      trace && chunk !== null && chunk < trace.chunks.start.length
        ? scoreProfile(trace, chunk, r.filter, topK, causal)
        : null,
    [trace, chunk, r.filter, topK, causal],
  );
  const routes = useMemo(
    () => (trace && chunk !== null ? edgesOf(routedEdges(trace, r.filter), chunk) : null),
    [trace, chunk, r.filter],
  );
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
  const nLayers = r.filter.layer >= 0 ? 1 : trace.layers.length;
  const nHeads = r.filter.head >= 0 ? 1 : (trace.layers[0]?.H ?? 0);

  return (
    <div className="inspector">
      <label className="select-field">
        <span className="field-caption">Pinned chunk</span>
        <select
          aria-label="Pinned chunk"
          value={r.pinned ?? -1}
          onChange={(e) => pin(Number(e.target.value) < 0 ? null : Number(e.target.value))}
        >
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
            <strong>{label(chunk)}</strong> · {trace.chunks.end[chunk] - trace.chunks.start[chunk]} tokens ·{' '}
            <span
              className="explained"
              title={routesWhy(
                trace.chunks.end[chunk] - trace.chunks.start[chunk],
                nLayers,
                nHeads,
                topK,
                routes.outgoing.length,
              )}
            >
              routes to {routes.outgoing.length} chunk{routes.outgoing.length === 1 ? '' : 's'}
            </span>
            , routed to from {routes.incoming.length}
            {r.pinned === null && <span className="muted"> (hover or focus; click or Enter to pin)</span>}
          </p>
          {trace.chunks.kind[chunk] === 1 && (
            <RoutesWhy
              tokens={trace.chunks.end[chunk] - trace.chunks.start[chunk]}
              layers={nLayers}
              heads={nHeads}
              topK={topK}
              candidates={profile.bars.filter((b) => b.role === 'candidate').length}
            />
          )}
          <ScoreChart
            profile={profile}
            topK={topK}
            chunkLabel={label}
            shortLabel={(c) => shortChunkName(label(c))}
            marks={memory ? { notes: memory.notes, legend: 'character’s earlier shot' } : undefined}
          />
          {memory && <MemoryLine chars={memory.chars} share={memory.share} shotNo={shotNo} causal={causal} />}
          {routes.outgoing.length > 0 && (
            <p className="small-text muted">
              Top routes:{' '}
              {routes.outgoing
                .slice(0, 4)
                .map((e) => `${label(e.to)} ${formatPercent(e.share)}`)
                .join(' · ')}
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
function MemoryLine({
  chars,
  share,
  shotNo,
  causal,
}: {
  chars: CharacterMemory[];
  share: MemoryShare | null;
  shotNo: (s: number) => number;
  causal: boolean;
}) {
  const seen = chars.filter((m) => m.shots.length > 0);
  if (!chars.length) return null;
  if (!seen.length || !share) {
    const ids = chars.map((m) => m.character);
    return (
      <p className="small-text muted">
        {ids.length === 1
          ? `Character ${ids[0]} first appears in this shot.`
          : `Characters ${listWords(ids.map(String))} first appear in this shot.`}
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
      {where.join('; ')} · routes there:{' '}
      <strong>{share.routed === null ? 'no picks' : `${pct(share.routed)} of picks`}</strong>{' '}
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

/** The number (from 1) the storyboard now gives the run's shot s (its run position when the shot is gone). */
function shotNumberer(runIds: string[], nowIds: string[]): (s: number) => number {
  return (s) => {
    const now = runIds[s] ? nowIds.indexOf(runIds[s]) : -1;
    return (now >= 0 ? now : s) + 1;
  };
}

/** Why "routes to N chunks" can pass k: each query token, layer and head picks its own top k among the candidates. */
function RoutesWhy({
  tokens,
  layers,
  heads,
  topK,
  candidates,
}: {
  tokens: number;
  layers: number;
  heads: number;
  topK: number;
  candidates: number;
}) {
  if (!candidates)
    return (
      <p className="small-text muted">
        It has no candidates (no earlier frame outside its own shot), so it routes nowhere; it still attends its
        mandatory chunks (the captions and its own shot).
      </p>
    );
  const most = Math.min(candidates, tokens * layers * heads * topK);
  return (
    <p className="small-text muted">
      Each of its {tokens} query tokens picks its own top {topK} of the {candidates} candidate chunk
      {candidates === 1 ? '' : 's'} in each of the {layers} layer{layers === 1 ? '' : 's'} × {heads} head
      {heads === 1 ? '' : 's'} drawn, so together they can reach up to {most} different chunk{most === 1 ? '' : 's'}
      {most > topK ? ', more than k' : ''}.
    </p>
  );
}

/** The tooltip of "routes to N chunks": why N can pass k. */
function routesWhy(tokens: number, layers: number, heads: number, topK: number, n: number): string {
  return `${n} different chunks, summed over the chunk’s ${tokens} query tokens, ${layers} layer${layers === 1 ? '' : 's'} and ${heads} head${heads === 1 ? '' : 's'}: each token picks its own top ${topK} in each layer and head, and different tokens, layers and heads pick different chunks.`;
}
