import type { ScoreProfile } from '../viz/dag-layout.ts';
import { placeLabels } from '../viz/labels.ts';

/** The axis labels' font size in the chart's units (styles.css `.score-chart .tick`). */
const TICK_PX = 11;

const ROLE_CLASS = {
  self: 'bar-self',
  mandatory: 'bar-mandatory',
  'causal-masked': 'bar-masked',
  candidate: 'bar-candidate',
  'text-query': 'bar-mandatory',
} as const;

interface Props {
  profile: ScoreProfile;
  topK: number;
  /** Label of chunk i, e.g. "Shot 2 · frame 3". */
  chunkLabel(chunk: number): string;
  /** A few characters for the axis under bar i, e.g. "2·3" (as many as fit without overlapping: the query's first, then each shot's first frame). */
  shortLabel?(chunk: number): string;
  /** Chunks to underline (e.g. the earlier shots of the query's characters): chunk → a note for its tooltip, and the legend's words. */
  marks?: { notes: ReadonlyMap<number, string>; legend: string };
}

/**
 * The routing scores of one query chunk against every chunk, in stream order: candidates above
 * the top-k cut (routed) in teal, below it in grey-blue, mandatory chunks hatched (attended
 * anyway, no slot spent), chunks behind the causal cut faded; `marks` underlined in amber.
 */
export function ScoreChart({ profile, topK, chunkLabel, shortLabel, marks }: Props) {
  const W = 360;
  const H = 150;
  const padL = 34;
  const padB = 22;
  const bars = profile.bars;
  const scores = bars.map((b) => b.score);
  const hi = Math.max(0, ...scores);
  const lo = Math.min(0, ...scores);
  const span = hi - lo || 1;
  const y = (v: number): number => 6 + ((hi - v) / span) * (H - padB - 6);
  const bw = (W - padL) / Math.max(1, bars.length);
  const x = (i: number): number => padL + i * bw;
  const ticks = new Map(
    shortLabel
      ? placeLabels(
          bars.map((b, i) => ({
            at: x(i) + bw / 2,
            text: shortLabel(b.chunk),
            priority:
              b.chunk === profile.chunk
                ? 2
                : i === 0 || shortLabel(bars[i - 1].chunk).split('·')[0] !== shortLabel(b.chunk).split('·')[0]
                  ? 1
                  : 0,
          })),
          TICK_PX,
          padL,
          W,
          3,
        ).map((p) => [p.index, p])
      : [],
  );
  const label = bars
    .filter((b) => b.role === 'candidate')
    .sort((a, b) => a.rank! - b.rank!)
    .map((b) => `${chunkLabel(b.chunk)} ${b.score.toFixed(2)}${b.rank! < topK ? ' (routed)' : ''}`)
    .join(', ');

  return (
    <figure className="score-chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Routing scores of ${chunkLabel(profile.chunk)} over candidate chunks: ${label || 'no candidates'}`}
      >
        <defs>
          <pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
            <rect width="4" height="4" fill="#3a4457" />
            <line x1="0" y1="0" x2="0" y2="4" stroke="#8a94a8" strokeWidth="1.5" />
          </pattern>
        </defs>
        <line x1={padL} x2={W} y1={y(0)} y2={y(0)} className="axis" />
        <text x={padL - 4} y={y(hi) + 4} className="tick" textAnchor="end">
          {hi.toFixed(1)}
        </text>
        <text x={padL - 4} y={y(lo) + 4} className="tick" textAnchor="end">
          {lo.toFixed(1)}
        </text>
        {bars.map((b, i) => {
          const top = Math.min(y(b.score), y(0));
          const h = Math.max(1, Math.abs(y(b.score) - y(0)));
          const routed = b.role === 'candidate' && b.rank !== null && b.rank < topK;
          const mark = marks?.notes.get(b.chunk);
          return (
            <g key={b.chunk}>
              <rect
                x={x(i) + 1}
                y={top}
                width={Math.max(1, bw - 2)}
                height={h}
                className={`${ROLE_CLASS[b.role]}${routed ? ' bar-routed' : ''}`}
                fill={b.role === 'mandatory' || b.role === 'text-query' ? 'url(#hatch)' : undefined}
              >
                <title>
                  {chunkLabel(b.chunk)}: score {b.score.toFixed(3)} · {describe(b.role, routed)}
                  {b.share > 0 ? ` · ${Math.round(b.share * 100)}% of its queries routed here` : ''}
                  {mark ? ` · ${mark}` : ''}
                </title>
              </rect>
              {mark && (
                <rect x={x(i) + 1} y={H - padB + 1} width={Math.max(1, bw - 2)} height={4} className="bar-mark" />
              )}
              {ticks.has(i) ? (
                <text
                  x={ticks.get(i)!.left + ticks.get(i)!.width / 2}
                  y={H - 6}
                  className={b.chunk === profile.chunk ? 'tick tick-query' : 'tick'}
                  textAnchor="middle"
                >
                  {ticks.get(i)!.text}
                </text>
              ) : (
                b.chunk === profile.chunk && (
                  <text x={x(i) + bw / 2} y={H - 6} className="tick tick-query" textAnchor="middle">
                    ▲
                  </text>
                )
              )}
            </g>
          );
        })}
        {profile.topKCut !== null && (
          <g>
            <line x1={padL} x2={W} y1={y(profile.topKCut)} y2={y(profile.topKCut)} className="cut-topk" />
            {/* at the left end: the causal cut's words sit at the top right */}
            <text x={padL + 3} y={y(profile.topKCut) - 3} className="cut-label">
              top-{topK} cut
            </text>
          </g>
        )}
        {profile.causalCut !== null && (
          <g>
            <line x1={x(profile.causalCut)} x2={x(profile.causalCut)} y1={0} y2={H - padB + 4} className="cut-causal" />
            {x(profile.causalCut) > W - 80 ? (
              <text x={x(profile.causalCut) - 3} y={10} className="cut-label" textAnchor="end">
                ← candidates · causal cut
              </text>
            ) : (
              <text x={x(profile.causalCut) + 3} y={10} className="cut-label">
                causal cut →
              </text>
            )}
          </g>
        )}
      </svg>
      <figcaption className="legend small-text">
        <Key className="key-routed" text="routed" />
        <Key className="key-candidate" text="candidate" />
        <Key className="key-mandatory" text="mandatory" />
        <Key className="key-masked" text="masked (causal)" />
        {marks && marks.notes.size > 0 && <Key className="key-mark" text={marks.legend} />}
      </figcaption>
    </figure>
  );
}

/** A legend entry: its swatch and words stay on one line. */
function Key({ className, text }: { className: string; text: string }) {
  return (
    <span className="legend-item">
      <span className={`key ${className}`} /> {text}
    </span>
  );
}

function describe(role: keyof typeof ROLE_CLASS, routed: boolean): string {
  switch (role) {
    case 'self':
      return 'the query chunk itself (mandatory)';
    case 'mandatory':
      return 'mandatory: always attended, no routing slot';
    case 'causal-masked':
      return 'masked by causality (not earlier)';
    case 'candidate':
      return routed ? 'candidate above the top-k cut: routed' : 'candidate below the top-k cut';
    case 'text-query':
      return 'caption queries do not route';
    default:
      return role satisfies never;
  }
}
