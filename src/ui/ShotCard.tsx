import { useSortable } from '@dnd-kit/sortable';
import { CSS } from '@dnd-kit/utilities';
import type { KeyboardEvent } from 'react';
import { shotLengthNote } from '../model/config.ts';
import type { Shot } from '../model/storyboard.ts';
import { regenerateShot } from '../state/actions/generate.ts';
import { MAX_SHOT_FRAMES, deleteShot, duplicateShot, moveShot, randomSeed, updateShot } from '../state/board-ops.ts';
import { getPreview, getTake } from '../state/media.ts';
import { isRunning } from '../state/slices/generation.ts';
import { useStudio } from '../state/store.ts';
import { changesSince } from '../state/versions.ts';
import { CaptionField } from './CaptionField.tsx';
import { formatTimecode } from './format.ts';
import { FrameCanvas } from './FrameCanvas.tsx';
import { Icon } from './Icon.tsx';
import { useFps, useVocab } from './hooks.ts';
import { NumberField } from './NumberField.tsx';

interface Props {
  id: string;
  index: number;
  shot: Shot;
  count: number;
  /** First frame of this shot on the joint timeline. */
  offset: number;
  /** Called after the card moved (to restore keyboard focus, which DOM moves drop). */
  onMoved(): void;
}

/** One shot of the storyboard: caption, duration, seed, its takes, and the moves and edits. */
export function ShotCard({ id, index, shot, count, offset, onMoved }: Props) {
  const { attributes, listeners, setNodeRef, setActivatorNodeRef, transform, transition, isDragging } = useSortable({
    id,
  });
  const edit = useStudio((s) => s.edit);
  const unit = useStudio((s) => s.durationUnit);
  const chosen = useStudio((s) => s.chosen[id]);
  const takes = useStudio((s) => s.takes[id]);
  const running = useStudio((s) => isRunning(s.run.phase));
  const target = useStudio((s) => isRunning(s.run.phase) && s.run.shotIds.includes(id));
  const modelReady = useStudio((s) => s.model.phase === 'ready');
  const textLen = useStudio((s) => s.model.info?.textLen ?? null);
  const trainFrames = useStudio((s) => s.model.info?.trainFrames ?? null);
  const mediaVersion = useStudio((s) => s.mediaVersion);
  const vocab = useVocab();
  const fps = useFps();
  const n = index + 1;
  const take = chosen ? takes?.find((t) => t.id === chosen) : undefined;
  const preview = target ? getPreview(id) : undefined;
  const clip = preview ?? (chosen ? getTake(chosen) : undefined);
  const lengthNote = shotLengthNote(shot.frames, trainFrames);
  const changes = take ? changesSince(shot, take) : [];
  const outdated = changes.length > 0;
  const version = take && takes ? takes.indexOf(take) + 1 : 0;
  const earlier = version > 1 ? takes![version - 2] : undefined;

  const move = (to: number): void => {
    edit((b) => moveShot(b, index, to));
    onMoved();
  };
  const onKeyDown = (e: KeyboardEvent): void => {
    if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
    e.preventDefault();
    move(index + (e.key === 'ArrowUp' ? -1 : 1));
  };
  const seek = (): void => useStudio.getState().setPlayer({ frame: offset, playing: false });

  return (
    <li
      ref={setNodeRef}
      style={{ transform: CSS.Transform.toString(transform), transition }}
      className={`shot-card${isDragging ? ' dragging' : ''}${target ? ' generating' : ''}`}
      data-shot-id={id}
      aria-label={`Shot ${n}`}
      onKeyDown={onKeyDown}
    >
      <div className="shot-head">
        <button
          type="button"
          ref={setActivatorNodeRef}
          className="drag-handle icon-button"
          {...attributes}
          {...listeners}
          aria-label={`Reorder shot ${n} (drag, or press Space then the arrow keys; Alt+↑/↓ in the card)`}
          title="Drag to reorder (or Alt+↑ / Alt+↓)"
        >
          <Icon name="grip" />
        </button>
        <h3 className="shot-title">
          <button type="button" className="link-button" onClick={seek} title="Show this shot in the player">
            Shot {n}
          </button>
        </h3>
        <span className="shot-time muted">
          {formatTimecode(offset, fps)}–{formatTimecode(offset + shot.frames, fps)}
        </span>
        <span className="shot-actions">
          <button
            type="button"
            className="icon-button"
            aria-label={`Move shot ${n} up`}
            title="Move up (Alt+↑)"
            disabled={index === 0}
            onClick={() => move(index - 1)}
          >
            <Icon name="up" />
          </button>
          <button
            type="button"
            className="icon-button"
            aria-label={`Move shot ${n} down`}
            title="Move down (Alt+↓)"
            disabled={index === count - 1}
            onClick={() => move(index + 1)}
          >
            <Icon name="down" />
          </button>
          <button
            type="button"
            className="icon-button"
            aria-label={`Duplicate shot ${n}`}
            title="Duplicate"
            onClick={() => edit((b) => duplicateShot(b, index))}
          >
            <Icon name="copy" />
          </button>
          <button
            type="button"
            className="icon-button danger"
            aria-label={`Delete shot ${n}`}
            title={count === 1 ? 'A storyboard needs one shot' : 'Delete'}
            disabled={count === 1}
            onClick={() => edit((b) => deleteShot(b, index))}
          >
            <Icon name="close" />
          </button>
        </span>
      </div>

      <div className="shot-body">
        <button
          type="button"
          className="shot-thumb"
          onClick={seek}
          aria-label={`Show shot ${n} in the player`}
          title="Show in the player"
        >
          <FrameCanvas
            clip={clip}
            frame={Math.floor((clip?.frames ?? 1) / 2)}
            size={72}
            version={mediaVersion}
            label={preview ? `Shot ${n}, preview` : clip ? `Shot ${n}, middle frame` : `Shot ${n} not generated yet`}
            placeholder={target ? '…' : '—'}
          />
        </button>
        <div className="shot-fields">
          <CaptionField
            label={`Shot ${n} caption`}
            value={shot.caption}
            vocab={vocab}
            maxTokens={textLen}
            placeholder="Character 1 spins in the forest, wide."
            onChange={(caption) => edit((b) => updateShot(b, index, { caption }), `caption:${id}`)}
          />
          <div className="shot-row">
            {unit === 'frames' ? (
              <NumberField
                label={`Shot ${n} duration in frames`}
                caption="Duration"
                suffix="frames"
                value={shot.frames}
                min={1}
                max={MAX_SHOT_FRAMES}
                onChange={(frames) => edit((b) => updateShot(b, index, { frames }), `frames:${id}`)}
              />
            ) : (
              <NumberField
                label={`Shot ${n} duration in seconds`}
                caption="Duration"
                suffix="s"
                value={shot.frames / fps}
                digits={3}
                step={1 / fps}
                min={1 / fps}
                max={MAX_SHOT_FRAMES / fps}
                onChange={(sec) => edit((b) => updateShot(b, index, { frames: Math.round(sec * fps) }), `frames:${id}`)}
              />
            )}
            <NumberField
              label={`Shot ${n} seed`}
              caption="Seed"
              value={shot.seed}
              min={0}
              max={0xffffffff}
              className="seed-field"
              onChange={(seed) => edit((b) => updateShot(b, index, { seed }), `seed:${id}`)}
            />
            <button
              type="button"
              className="icon-button"
              aria-label={`New seed for shot ${n}`}
              title="New random seed"
              onClick={() => edit((b) => updateShot(b, index, { seed: randomSeed() }))}
            >
              <Icon name="dice" />
            </button>
          </div>
          {lengthNote && (
            <p
              className="shot-note muted small-text"
              role="note"
              aria-label={`Shot ${n} length note`}
              title="A hint, not an error: the shot is generated either way"
            >
              {lengthNote}
            </p>
          )}
          <div className="shot-row shot-status">
            {take ? (
              <span className={outdated ? 'warn-text' : 'muted'} aria-label={`Shot ${n} version`}>
                {outdated ? `Changed since generated (${changes.join(', ')})` : 'Generated'} · v{version} of{' '}
                {takes!.length}
                {earlier && earlier.seed !== take.seed && !outdated && (
                  <>
                    {' '}
                    · seed {take.seed} (v{version - 1}: {earlier.seed})
                  </>
                )}
              </span>
            ) : (
              <span className="muted">{target ? 'Generating…' : 'Not generated yet'}</span>
            )}
            <button
              type="button"
              className="small"
              disabled={running || !modelReady}
              onClick={() => void regenerateShot(id)}
              aria-label={`Regenerate shot ${n}`}
              title={regenerateTitle(take !== undefined, outdated, shot.seed)}
            >
              <Icon name="regen" size={13} /> Regenerate
            </button>
          </div>
        </div>
      </div>
    </li>
  );
}

function regenerateTitle(generated: boolean, changed: boolean, seed: number): string {
  const context = 'every other finished shot is kept as context';
  if (!generated || changed) return `Sample this shot with seed ${seed}; ${context}`;
  return `Sample this shot again with a new seed (shown in the Seed field); the kept version keeps seed ${seed}, and Keep on it brings that seed back; ${context}`;
}
