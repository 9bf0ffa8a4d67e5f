import { useRef, useState, type KeyboardEvent, type MouseEvent, type PointerEvent } from 'react';
import {
  canExport,
  download,
  exportFramePng,
  exportVideo,
  missingShots,
  timelineClips,
} from '../state/actions/export.ts';
import { explainAt, teachGeometry } from '../state/actions/teach.ts';
import { shotOffsets } from '../state/board-ops.ts';
import type { Clip } from '../state/media.ts';
import { useStudio } from '../state/store.ts';
import { formatTimecode } from './format.ts';
import { FrameCanvas } from './FrameCanvas.tsx';
import { Icon } from './Icon.tsx';
import { useAnimationFrame, useFps } from './hooks.ts';

/** The video: the frame under the play head, transport controls, the shot timeline, export. */
export function Player() {
  const board = useStudio((s) => s.board);
  const shotIds = useStudio((s) => s.shotIds);
  const player = useStudio((s) => s.player);
  const setPlayer = useStudio((s) => s.setPlayer);
  const mediaVersion = useStudio((s) => s.mediaVersion);
  const teachOpen = useStudio((s) => s.teach.open);
  const running = useStudio((s) => s.run.phase === 'running');
  const targets = useStudio((s) => s.run.shotIds);
  const fps = useFps();
  const offsets = shotOffsets(board);
  const total = offsets[offsets.length - 1];
  const frame = Math.min(player.frame, total - 1);
  const shot = Math.max(
    0,
    offsets.findIndex((o, i) => i < board.shots.length && frame >= o && frame < offsets[i + 1]),
  );
  const clips = timelineClips();
  const clip = clips[shot];
  const local = frame - offsets[shot];
  const acc = useRef(0);
  const [exporting, setExporting] = useState<string | null>(null);
  const [exportError, setExportError] = useState<string | null>(null);
  const [exportNote, setExportNote] = useState<string | null>(null);
  const [format, setFormat] = useState<'mp4' | 'webm'>('mp4');
  const missing = canExport() ? missingShots() : [];

  useAnimationFrame(player.playing, (dt) => {
    acc.current += dt;
    const step = 1000 / fps;
    if (acc.current < step) return;
    const n = Math.floor(acc.current / step);
    acc.current -= n * step;
    const s = useStudio.getState();
    const end = shotOffsets(s.board).at(-1)!;
    let next = s.player.frame + n;
    if (next >= end) {
      if (!s.player.loop) return s.setPlayer({ frame: end - 1, playing: false });
      next %= end;
    }
    s.setPlayer({ frame: next });
  });

  const seek = (f: number): void => setPlayer({ frame: Math.min(Math.max(0, f), total - 1) });
  const label = `Shot ${shot + 1}, frame ${local + 1} of ${board.shots[shot]?.frames ?? 0}${clip ? '' : ' (not generated yet)'}`;

  const onFrameClick = (e: MouseEvent<HTMLCanvasElement>, c: Clip): void => {
    if (!teachOpen) return;
    const r = e.currentTarget.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * c.width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * c.height);
    void explainAt(shotIds[shot], local, x, y);
  };

  const doExport = async (): Promise<void> => {
    setExportError(null);
    setExportNote(null);
    setExporting('Encoding…');
    try {
      const missing = missingShots();
      const video = await exportVideo(format, (d, n) => setExporting(`Encoding frame ${d} / ${n}…`));
      download(video.blob, `moc-studio.${video.container}`);
      setExporting(null);
      const notes = [
        `Exported ${video.container.toUpperCase()} (${video.codec})`,
        video.fallback ? `not MP4: ${video.fallback}` : '',
        missing.length ? `${missingText(missing)} left out (not generated yet)` : '',
      ];
      setExportNote(notes.filter(Boolean).join(' · '));
    } catch (e) {
      setExporting(null);
      setExportError(`Export failed: ${(e as Error).message}`);
    }
  };

  /** ←/→ step a frame, Space plays or pauses, while focus is in the player (not in a text field). */
  const onKeyDown = (e: KeyboardEvent<HTMLElement>): void => {
    const t = e.target as HTMLElement;
    if (t.closest('input, textarea, select') || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      e.preventDefault();
      seek(frame + (e.key === 'ArrowLeft' ? -1 : 1));
    } else if (e.key === ' ' && !t.closest('button')) {
      e.preventDefault();
      setPlayer({ playing: !player.playing });
    }
  };

  return (
    <section className="panel player" aria-labelledby="player-title" onKeyDown={onKeyDown}>
      <header className="panel-header">
        <h2 id="player-title">Player</h2>
        <span className="muted small-text">
          {formatTimecode(frame, fps)} / {formatTimecode(total, fps)} · frame {frame + 1} / {total}
        </span>
      </header>
      <div className={`viewport${teachOpen ? ' picking' : ''}`}>
        <div className="frame-wrap">
          <FrameCanvas
            clip={clip}
            frame={local}
            size={320}
            version={mediaVersion}
            label={label}
            onClick={onFrameClick}
            placeholder={
              running && targets.includes(shotIds[shot]) ? 'Sampling…' : `Shot ${shot + 1} is not generated yet`
            }
          />
          {clip && <PickedPatch shotId={shotIds[shot]} frame={local} />}
        </div>
        <p className="viewport-caption small-text" title={board.shots[shot]?.caption}>
          <strong>Shot {shot + 1}</strong> {board.shots[shot]?.caption || <span className="muted">(no caption)</span>}
        </p>
        {teachOpen && <p className="pick-hint small-text">Click a pixel to pick the query token under it.</p>}
      </div>

      <div className="transport" role="group" aria-label="Playback">
        <button type="button" aria-label="Previous frame" title="Previous frame (←)" onClick={() => seek(frame - 1)}>
          <Icon name="prev" />
        </button>
        <button
          type="button"
          className="play"
          aria-label={player.playing ? 'Pause' : 'Play'}
          onClick={() =>
            setPlayer({ playing: !player.playing, frame: !player.playing && frame >= total - 1 ? 0 : frame })
          }
        >
          <Icon name={player.playing ? 'pause' : 'play'} />
        </button>
        <button type="button" aria-label="Next frame" title="Next frame (→)" onClick={() => seek(frame + 1)}>
          <Icon name="next" />
        </button>
        <button
          type="button"
          aria-label="Loop"
          aria-pressed={player.loop}
          className={player.loop ? 'on' : ''}
          onClick={() => setPlayer({ loop: !player.loop })}
          title="Loop"
        >
          <Icon name="loop" />
        </button>
        <span className="toolbar-sep" />
        <select
          aria-label="Video format"
          value={format}
          onChange={(e) => setFormat(e.target.value as 'mp4' | 'webm')}
          title="MP4 (H.264) plays everywhere; where this browser cannot encode H.264 the export falls back to WebM and says why"
        >
          <option value="mp4">MP4</option>
          <option value="webm">WebM</option>
        </select>
        <button
          type="button"
          disabled={!canExport() || exporting !== null}
          onClick={() => void doExport()}
          title="Encode every finished shot, in order, into one video file"
        >
          Export video
        </button>
        <button
          type="button"
          disabled={!clip}
          onClick={() => void exportFramePng(frame).then((b) => b && download(b, `frame-${frame + 1}.png`))}
          title="Save this frame as PNG"
        >
          Save frame PNG
        </button>
        {exporting && <span className="muted small-text">{exporting}</span>}
        {!exporting && missing.length > 0 && (
          <span className="warn-text small-text" role="note" aria-label="Export warning">
            {missingText(missing)} not generated yet: the video will leave {missing.length > 1 ? 'them' : 'it'} out
          </span>
        )}
        {exportNote && (
          <span className="muted small-text" role="status" aria-label="Export result">
            {exportNote}
          </span>
        )}
        {exportError && (
          <span className="error-text small-text" role="alert">
            {exportError}
          </span>
        )}
      </div>
      <Timeline offsets={offsets} frame={frame} clips={clips} onSeek={seek} fps={fps} />
    </section>
  );
}

/** Teaching mode's query token, outlined on the frame it was picked on (while that frame is shown). */
function PickedPatch({ shotId, frame }: { shotId: string; frame: number }) {
  const q = useStudio((s) => s.teach.query);
  if (!q || q.shotId !== shotId || q.frame !== frame) return null;
  const { imageSize, patchSize } = teachGeometry();
  const grid = imageSize / patchSize;
  const cell = 100 / grid;
  return (
    <span
      className="patch-mark"
      role="img"
      aria-label={`Picked query token: patch row ${Math.floor(q.patch / grid) + 1} col ${(q.patch % grid) + 1}`}
      style={{
        left: `${(q.patch % grid) * cell}%`,
        top: `${Math.floor(q.patch / grid) * cell}%`,
        width: `${cell}%`,
        height: `${cell}%`,
      }}
    />
  );
}

interface TimelineProps {
  offsets: number[];
  frame: number;
  clips: Array<Clip | null>;
  fps: number;
  onSeek(frame: number): void;
}

/** Shots as segments on one line, the play head over them; drag or use the slider to scrub. */
function Timeline({ offsets, frame, clips, fps, onSeek }: TimelineProps) {
  const total = offsets[offsets.length - 1];
  const barRef = useRef<HTMLDivElement>(null);
  const at = (e: PointerEvent): number => {
    const r = barRef.current!.getBoundingClientRect();
    return Math.floor(((e.clientX - r.left) / r.width) * total);
  };
  return (
    <div className="timeline">
      <div
        className="timeline-bar"
        ref={barRef}
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          onSeek(at(e));
        }}
        onPointerMove={(e) => {
          if (e.buttons & 1) onSeek(at(e));
        }}
      >
        {offsets.slice(0, -1).map((o, i) => (
          <div
            key={i}
            className={`timeline-shot${clips[i] ? ' has-frames' : ''}`}
            style={{ left: `${(o / total) * 100}%`, width: `${((offsets[i + 1] - o) / total) * 100}%` }}
            title={`Shot ${i + 1}: ${formatTimecode(o, fps)}–${formatTimecode(offsets[i + 1], fps)}`}
          >
            <span>Shot {i + 1}</span>
          </div>
        ))}
        <div className="playhead" style={{ left: `${((frame + 0.5) / total) * 100}%` }} />
      </div>
      <input
        type="range"
        className="timeline-range"
        aria-label="Timeline"
        min={0}
        max={total - 1}
        step={1}
        value={frame}
        aria-valuetext={`frame ${frame + 1} of ${total}`}
        onChange={(e) => onSeek(Number(e.target.value))}
      />
    </div>
  );
}

/** "Shot 2" or "Shots 2, 3". */
function missingText(shots: number[]): string {
  return `${shots.length > 1 ? 'Shots' : 'Shot'} ${shots.join(', ')}`;
}
