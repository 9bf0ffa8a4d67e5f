import { download, exportTakeStripPng } from '../state/actions/export.ts';
import { deleteTake } from '../state/actions/generate.ts';
import { shotOffsets } from '../state/board-ops.ts';
import { getTake } from '../state/media.ts';
import { useStudio } from '../state/store.ts';
import { formatDuration, formatPercent } from './format.ts';
import { FrameCanvas } from './FrameCanvas.tsx';

/**
 * The versions of the shot under the play head, side by side at the same frame, to compare
 * and keep one: the kept version plays, exports and is the context other shots keep.
 */
export function TakesPanel() {
  const board = useStudio((s) => s.board);
  const shotIds = useStudio((s) => s.shotIds);
  const frame = useStudio((s) => s.player.frame);
  const mediaVersion = useStudio((s) => s.mediaVersion);
  const offsets = shotOffsets(board);
  const shot = Math.max(
    0,
    offsets.findIndex((o, i) => i < board.shots.length && frame >= o && frame < offsets[i + 1]),
  );
  const id = shotIds[shot];
  const takes = useStudio((s) => s.takes[id]);
  const chosen = useStudio((s) => s.chosen[id]);
  const choose = useStudio((s) => s.chooseTake);
  const local = frame - offsets[shot];
  const current = board.shots[shot];

  return (
    <section className="panel takes" aria-labelledby="takes-title">
      <header className="panel-header">
        <h2 id="takes-title">Shot {shot + 1} versions</h2>
        <span className="muted small-text">
          {takes?.length ? `${takes.length} generated · the kept one plays and exports` : 'none yet'}
        </span>
      </header>
      {takes?.length ? (
        <ul className="take-list">
          {[...takes].reverse().map((t, i) => {
            const clip = getTake(t.id);
            const kept = t.id === chosen;
            const outdated = t.caption !== current?.caption || t.frames !== current?.frames;
            return (
              <li key={t.id} className={`take${kept ? ' kept' : ''}`}>
                <FrameCanvas
                  clip={clip}
                  frame={local}
                  size={96}
                  version={mediaVersion}
                  label={`Version ${takes.length - i} of shot ${shot + 1}, frame ${local + 1}`}
                />
                <div className="take-meta small-text">
                  <strong>v{takes.length - i}</strong> · seed {t.seed} · {t.steps} steps · {t.attention.mode}
                  {t.attention.mode === 'moc' ? ` k=${t.attention.topK}` : ''}
                  <br />
                  <span className="muted">
                    {new Date(t.createdAt).toLocaleTimeString()} · run {formatDuration(t.runMs)} · sparsity{' '}
                    {formatPercent(t.sparsity)}
                  </span>
                  {outdated && <span className="warn-text"> · caption or length changed since</span>}
                </div>
                <div className="take-actions">
                  <button
                    type="button"
                    className="small"
                    aria-pressed={kept}
                    disabled={kept}
                    onClick={() => choose(id, t.id)}
                  >
                    {kept ? 'Kept' : 'Keep this'}
                  </button>
                  <button
                    type="button"
                    className="small"
                    onClick={() =>
                      void exportTakeStripPng(t.id).then(
                        (b) => b && download(b, `shot-${shot + 1}-v${takes.length - i}.png`),
                      )
                    }
                    title="All frames of this version as one PNG strip"
                  >
                    PNG strip
                  </button>
                  <button
                    type="button"
                    className="small danger"
                    aria-label={`Delete version ${takes.length - i} of shot ${shot + 1}`}
                    onClick={() => void deleteTake(id, t.id)}
                  >
                    Delete
                  </button>
                </div>
              </li>
            );
          })}
        </ul>
      ) : (
        <p className="muted small-text">Generate, or press ↻ Regenerate on this shot, to get versions to compare.</p>
      )}
    </section>
  );
}
