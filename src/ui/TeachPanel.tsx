import { explain, setTeachOpen, teachGeometry } from '../state/actions/teach.ts';
import { useStudio } from '../state/store.ts';
import { routeViewText } from '../model/config.ts';
import type { ExplainedChunk, Explanation } from '../worker/protocol.ts';
import { chunkNamer } from '../viz/chunk-names.ts';
import { formatPercent } from './format.ts';
import { DocLinks } from './RoutingGraph.tsx';

/**
 * Teaching mode: pick a query token on a frame and walk through MoC for it — descriptor scores,
 * the causal mask, top-k, mandatory anchors and the final key set — with the actual numbers:
 * the network's own (one layer's q and k from a forward pass on the generated video; head and
 * layer selectable) once the storyboard has a video, a seeded example until then (labelled so).
 */
export function TeachPanel() {
  const teach = useStudio((s) => s.teach);
  const shotIds = useStudio((s) => s.shotIds);
  const engineReady = useStudio((s) => s.engine.phase === 'ready');
  const g = teachGeometry();
  const grid = g.imageSize / g.patchSize;

  return (
    <section className="panel teach" aria-labelledby="teach-title">
      <header className="panel-header">
        <h2 id="teach-title">Teaching mode</h2>
        <button
          type="button"
          aria-pressed={teach.open}
          className={teach.open ? 'on' : ''}
          onClick={() => setTeachOpen(!teach.open)}
          disabled={!engineReady}
        >
          {teach.open ? 'Stop picking' : 'Pick a query token'}
        </button>
      </header>
      <Intro patch={g.patchSize} />
      {!teach.query && (
        <p className="muted small-text">
          {teach.open
            ? `Click a pixel of the frame in the player: the ${g.patchSize}×${g.patchSize} patch under it is one query token. MoC is then worked through for it, step by step.`
            : 'Follow one query token through Mixture of Contexts: which chunks it must see, how it scores the rest, what top-k and the causal mask keep — with the network’s own numbers once the video is generated.'}
        </p>
      )}
      {teach.query && (
        <p className="small-text">
          Query: <strong>Shot {shotIds.indexOf(teach.query.shotId) + 1}</strong>, frame {teach.query.frame + 1}, patch
          row {Math.floor(teach.query.patch / grid) + 1} col {(teach.query.patch % grid) + 1}
          {g.assumed && (
            <span className="muted">
              {' '}
              (no model loaded: assuming {g.imageSize}×{g.imageSize} frames, {g.patchSize}-pixel patches, {g.textLen}
              -token captions)
            </span>
          )}
          {teach.result && (
            <label className="select-field inline teach-head">
              <span className="field-caption">Head</span>
              <select
                aria-label="Teaching head"
                value={teach.result.head}
                onChange={(e) => void explain(teach.query, { head: Number(e.target.value) })}
              >
                {Array.from({ length: teach.result.heads }, (_, h) => (
                  <option key={h} value={h}>
                    {h + 1}
                  </option>
                ))}
              </select>
            </label>
          )}
          {teach.result?.network && (
            <label className="select-field inline teach-head">
              <span className="field-caption">Layer</span>
              <select
                aria-label="Teaching layer"
                value={teach.result.network.layer}
                onChange={(e) => void explain(teach.query, { layer: Number(e.target.value) })}
              >
                {Array.from({ length: teach.result.network.layers }, (_, l) => (
                  <option key={l} value={l}>
                    {l + 1}
                  </option>
                ))}
              </select>
            </label>
          )}
        </p>
      )}
      {teach.phase === 'computing' && <p className="muted small-text">Computing…</p>}
      {teach.phase === 'error' && teach.error && (
        <p className="error-text small-text" role="alert">
          {teach.error.message}
        </p>
      )}
      {teach.phase === 'ready' && teach.result && (
        <Walkthrough r={teach.result} fallback={teach.fallback} tokensPerFrame={grid * grid} />
      )}
    </section>
  );
}

/** Mixture of Contexts in plain words, before the walkthrough's notation; open until a token is explained, then a click away. */
function Intro({ patch }: { patch: number }) {
  const explained = useStudio((s) => s.teach.result !== null);
  return (
    <details className="teach-intro small-text" open={!explained}>
      <summary>In plain words</summary>
      <p>
        The video is cut into <strong>chunks</strong>: each caption is one, and each frame of a shot is one (“Shot 2 ·
        frame 3”, the same names as in the routing graph). A <strong>token</strong> is one {patch}×{patch}-pixel patch
        of one frame.
      </p>
      <p>
        Dense attention lets every token look at every other token. Mixture of Contexts lets it look at far fewer: it{' '}
        <strong>always</strong> looks at all captions and at its own shot, and of the other frames it keeps only the few
        that match it best — it compares itself with a one-vector summary of each frame (the average of that frame’s
        keys) and keeps the top k. With causal routing, only frames before its own can be kept.
      </p>
      <p className="muted">
        Below, the same steps with the paper’s symbols: M(i) the chunks token i always sees, φ(K<sub>c</sub>) the
        summary of chunk c, R(i) the chunks it routes to, Ω(i) everything it attends to. More: <DocLinks />.
      </p>
    </details>
  );
}

/** One line on where the numbers come from: the network (model, layer, head, t) or the seeded example and why. */
function Origin({ r, fallback }: { r: Explanation; fallback: string | null }) {
  const n = r.network;
  return (
    <p className={`teach-origin small-text${n ? '' : ' teach-example'}`} role="note" aria-label="Source of the numbers">
      {n ? (
        <>
          <strong>The network’s own numbers</strong>: model {n.model}, layer {n.layer + 1} of {n.layers}, head{' '}
          {r.head + 1} of {r.heads}, t = {Number(n.t.toPrecision(3))} (the run’s last sampler step), on the generated
          video.
        </>
      ) : (
        <>
          <strong>A seeded example, not the network’s numbers</strong>
          {fallback ? ` — ${fallback}` : ''}. The chunk table, mandatory anchors, causal mask and top-k rule are this
          storyboard’s; the network’s own numbers come once its video is generated.
        </>
      )}
    </p>
  );
}

function Walkthrough({
  r,
  fallback,
  tokensPerFrame,
}: {
  r: Explanation;
  fallback: string | null;
  tokensPerFrame: number;
}) {
  const named = chunkNamer(r.chunks, tokensPerFrame);
  const name = (c: ExplainedChunk): string => named(c.index);
  const q = r.chunks[r.queryChunk];
  const mandatory = r.chunks.filter((c) => c.mandatory);
  const cands = r.chunks.filter((c) => c.candidate).sort((a, b) => a.rank! - b.rank!);
  const masked = r.chunks.filter((c) => c.causalMasked);
  const routed = r.chunks.filter((c) => c.routed).sort((a, b) => a.rank! - b.rank!);
  const mandTokens = mandatory.reduce((n, c) => n + c.tokens, 0);
  const routedTokens = routed.reduce((n, c) => n + c.tokens, 0);
  const maxAbs = Math.max(1e-9, ...r.chunks.map((c) => Math.abs(c.score)));

  return (
    <div className="walkthrough">
      <Origin r={r} fallback={fallback} />
      <ChunkStrip r={r} name={named} />
      <ol className="steps">
        <li>
          <h3>The query</h3>
          <p>
            Token <strong>{r.queryToken}</strong> of {r.totalTokens} lives in chunk <strong>{name(q)}</strong> (
            {q.tokens} tokens). Head {r.head + 1} of {r.heads}: q = [{r.queryHead.map((v) => v.toFixed(2)).join(', ')}
            {r.headDim > r.queryHead.length ? ', …' : ''}] (D = {r.headDim}).
          </p>
        </li>
        <li>
          <h3>Mandatory anchors M(i)</h3>
          <p>
            <em>What the token always sees.</em> Every caption, and the query’s own shot:{' '}
            {mandatory.map(name).join(', ')} — <strong>{mandTokens}</strong> tokens, attended densely without spending a
            routing slot.
          </p>
        </li>
        <li>
          <h3>Scores against chunk descriptors</h3>
          <p>
            <em>How well each other frame matches the token.</em> Each other video chunk c is summarised by φ(K
            <sub>c</sub>), the mean of its keys; the score is q·φ(K<sub>c</sub>).
            {r.network?.routeView && r.network.routeView !== 'rotary'
              ? ` This model routes with its routing view “${r.network.routeView}”: ${routeViewText(r.network.routeView)} (attention itself uses the rotated q and k), so q and the keys here are that view’s.`
              : r.network
                ? ' This model routes with q and k as rotated for attention, so the time rotation every token of a frame shares is part of each score.'
                : ''}
            {r.causal
              ? ` Causal routing masks every chunk not before the query’s (${masked.length} masked).`
              : ' Routing is not causal here: later chunks are candidates too.'}
          </p>
          <table className="score-table">
            <thead>
              <tr>
                <th scope="col">Chunk</th>
                <th scope="col">q·φ(K)</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {r.chunks
                .filter((c) => c.kind === 'video' && c.index !== r.queryChunk && !c.mandatory)
                .map((c) => (
                  <tr key={c.index} className={c.routed ? 'row-routed' : c.causalMasked ? 'row-masked' : ''}>
                    <td>{name(c)}</td>
                    <td className="num">
                      <span
                        className="score-bar"
                        style={{ width: `${(Math.abs(c.score) / maxAbs) * 60}px`, opacity: c.causalMasked ? 0.3 : 1 }}
                        data-neg={c.score < 0 || undefined}
                      />
                      {c.score.toFixed(3)}
                    </td>
                    <td>
                      {c.causalMasked
                        ? 'masked (not earlier)'
                        : c.routed
                          ? `routed (rank ${c.rank! + 1})`
                          : `candidate (rank ${c.rank! + 1})`}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </li>
        <li>
          <h3>Top-k</h3>
          <p>
            <em>Keep the best matches.</em>{' '}
            {cands.length === 0
              ? 'No candidates: nothing earlier outside the own shot, so the query sees only its mandatory chunks.'
              : `${cands.length} candidate${cands.length > 1 ? 's' : ''}, k = ${r.topK}: ${Math.min(r.topK, cands.length) === 1 ? 'the best by score is' : `the ${Math.min(r.topK, cands.length)} best by score are`} kept (ties go to the earlier chunk): ${routed.map((c) => `${name(c)} (${c.score.toFixed(2)})`).join(', ') || 'none'}.`}
          </p>
        </li>
        <li>
          <h3>The key set Ω(i) = M(i) ∪ R(i)</h3>
          <p>
            <em>Everything the token attends to: what it always sees plus what it kept.</em> {mandTokens} mandatory +{' '}
            {routedTokens} routed = <strong>{r.keyTokens}</strong> of {r.totalTokens} tokens: this query skips{' '}
            <strong>{formatPercent(1 - r.keyTokens / r.totalTokens)}</strong> of the keys dense attention would read.
          </p>
        </li>
      </ol>
      {r.note && <p className="small-text teach-note">{r.note}</p>}
      <p className="muted small-text">{r.source}</p>
    </div>
  );
}

/** Every chunk as a box in stream order, coloured by what it is for the query. */
function ChunkStrip({ r, name }: { r: Explanation; name: (chunk: number) => string }) {
  return (
    <div
      className="chunk-strip"
      role="img"
      aria-label={`Chunks: ${r.chunks.filter((c) => c.routed).length} routed, ${r.chunks.filter((c) => c.mandatory).length} mandatory, ${r.chunks.filter((c) => c.causalMasked).length} masked`}
    >
      {r.chunks.map((c) => {
        const cls =
          c.index === r.queryChunk
            ? 'query'
            : c.routed
              ? 'routed'
              : c.mandatory
                ? 'mandatory'
                : c.causalMasked
                  ? 'masked'
                  : 'skipped';
        return (
          <span
            key={c.index}
            className={`strip-chunk strip-${cls} strip-${c.kind}`}
            style={{ flexGrow: c.kind === 'text' ? 1 : Math.max(1, c.tokens / 64) }}
            title={`${name(c.index)}: ${cls}`}
          />
        );
      })}
      <span className="strip-legend small-text">
        <span className="key strip-query" /> query <span className="key strip-mandatory" /> mandatory{' '}
        <span className="key strip-routed" /> routed <span className="key strip-skipped" /> not chosen{' '}
        <span className="key strip-masked" /> masked
      </span>
    </div>
  );
}
