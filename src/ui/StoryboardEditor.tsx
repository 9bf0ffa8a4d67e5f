import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  closestCenter,
  useSensor,
  useSensors,
  type DragEndEvent,
} from '@dnd-kit/core';
import { SortableContext, sortableKeyboardCoordinates, verticalListSortingStrategy } from '@dnd-kit/sortable';
import { useEffect, useRef, useState } from 'react';
import { exportStoryboard, importStoryboardFile, loadSample } from '../state/actions/board.ts';
import { download } from '../state/actions/export.ts';
import { exportProject, openProjectFile } from '../state/actions/project.ts';
import {
  currentSummary,
  deleteProject,
  listProjects,
  newProject,
  renameProject,
  switchProject,
  type ProjectSummary,
} from '../state/actions/projects.ts';
import { MAX_SHOTS, addShot, moveShot, setGlobalCaption, shotOffsets } from '../state/board-ops.ts';
import { isRunning } from '../state/slices/generation.ts';
import { useStudio } from '../state/store.ts';
import { CaptionField, VocabList } from './CaptionField.tsx';
import { formatTimecode } from './format.ts';
import { Icon } from './Icon.tsx';
import { useFps, useVocab } from './hooks.ts';
import { ShotCard } from './ShotCard.tsx';

/** The storyboard: cast caption, shots (sortable), undo/redo, import/export, samples, autosave state. */
export function StoryboardEditor() {
  const board = useStudio((s) => s.board);
  const shotIds = useStudio((s) => s.shotIds);
  const edit = useStudio((s) => s.edit);
  const textLen = useStudio((s) => s.model.info?.textLen ?? null);
  const vocab = useVocab();
  const fps = useFps();
  const listRef = useRef<HTMLOListElement>(null);
  const offsets = shotOffsets(board);
  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 4 } }),
    useSensor(KeyboardSensor, { coordinateGetter: sortableKeyboardCoordinates }),
  );

  const onDragEnd = ({ active, over }: DragEndEvent): void => {
    if (!over || active.id === over.id) return;
    const from = shotIds.indexOf(String(active.id));
    const to = shotIds.indexOf(String(over.id));
    if (from >= 0 && to >= 0) edit((b) => moveShot(b, from, to));
  };

  /** After a move, focus what had focus again (React moves the same DOM node, which drops focus). */
  const refocus = (): void => {
    const el = document.activeElement as HTMLElement | null;
    requestAnimationFrame(() => {
      if (el?.isConnected && document.activeElement !== el) el.focus();
    });
  };

  const add = (): void => {
    edit((b) => addShot(b));
    requestAnimationFrame(() => listRef.current?.querySelector<HTMLTextAreaElement>('li:last-child textarea')?.focus());
  };

  return (
    <section className="panel storyboard" aria-labelledby="storyboard-title">
      <header className="panel-header">
        <h2 id="storyboard-title">Storyboard</h2>
        <SaveIndicator />
      </header>
      <Projects />
      <BoardToolbar />
      <Samples />
      <ImportError />

      <div className="global-caption">
        <h3 className="field-title">Cast</h3>
        <CaptionField
          label="Global caption"
          value={board.globalCaption}
          vocab={vocab}
          maxTokens={textLen}
          placeholder="Character 1 is a red star. Character 2 is a blue circle."
          onChange={(text) => edit((b) => setGlobalCaption(b, text), 'caption:global')}
        />
        <p className="muted small-text">
          Introduce the characters once; shots refer to them by number. What no caption says (patterns, sizes, scenery)
          must stay consistent across shots — that is what routing to earlier shots is for.
        </p>
        <VocabList vocab={vocab} />
      </div>

      <div className="shots-head">
        <h3 className="field-title">
          Shots{' '}
          <span className="muted">
            · {board.shots.length} · {formatTimecode(offsets[offsets.length - 1], fps)} at {fps} fps
          </span>
        </h3>
      </div>
      <DndContext sensors={sensors} collisionDetection={closestCenter} onDragEnd={onDragEnd}>
        <SortableContext items={shotIds} strategy={verticalListSortingStrategy}>
          <ol className="shot-list" ref={listRef}>
            {board.shots.map((shot, i) => (
              <ShotCard
                key={shotIds[i]}
                id={shotIds[i]}
                index={i}
                shot={shot}
                count={board.shots.length}
                offset={offsets[i]}
                onMoved={refocus}
              />
            ))}
          </ol>
        </SortableContext>
      </DndContext>
      <button
        type="button"
        className="add-shot"
        aria-label="Add shot"
        onClick={add}
        disabled={board.shots.length >= MAX_SHOTS}
        title={
          board.shots.length >= MAX_SHOTS ? `A storyboard holds at most ${MAX_SHOTS} shots` : 'Add a shot at the end'
        }
      >
        + Add shot
      </button>
    </section>
  );
}

function BoardToolbar() {
  const canUndo = useStudio((s) => s.past.length > 0);
  const canRedo = useStudio((s) => s.future.length > 0);
  const undo = useStudio((s) => s.undo);
  const redo = useStudio((s) => s.redo);
  const unit = useStudio((s) => s.durationUnit);
  const setUnit = useStudio((s) => s.setDurationUnit);

  return (
    <div className="toolbar" role="toolbar" aria-label="Storyboard tools">
      <button type="button" onClick={undo} disabled={!canUndo} aria-label="Undo" title="Undo (Ctrl+Z)">
        <Icon name="undo" /> Undo
      </button>
      <button type="button" onClick={redo} disabled={!canRedo} aria-label="Redo" title="Redo (Ctrl+Shift+Z)">
        <Icon name="redo" /> Redo
      </button>
      <span className="toolbar-sep" />
      <FileButton
        label="Import JSON"
        title="Open a storyboard JSON file"
        inputLabel="Storyboard file to import"
        onFile={(file) => void importStoryboardFile(file)}
      />
      <button
        type="button"
        onClick={() => download(new Blob([exportStoryboard()], { type: 'application/json' }), 'storyboard.json')}
        title="Save the storyboard as JSON"
      >
        Export JSON
      </button>
      <span className="toolbar-sep" />
      <ProjectButtons />
      <span className="toolbar-sep" />
      <div className="segmented" role="radiogroup" aria-label="Durations in">
        {(['frames', 'seconds'] as const).map((u) => (
          <button
            key={u}
            type="button"
            role="radio"
            aria-checked={unit === u}
            className={unit === u ? 'on' : ''}
            onClick={() => setUnit(u)}
          >
            {u}
          </button>
        ))}
      </div>
    </div>
  );
}

function Samples() {
  const samples = useStudio((s) => s.samples);
  if (samples.state !== 'ready') return null;
  return (
    <div className="samples" role="group" aria-label="Sample storyboards">
      <span className="muted">Samples:</span>
      {samples.entries.map((e) => (
        <button
          key={e.url}
          type="button"
          className="chip-button"
          title={e.description || `Load “${e.name}” (undo brings yours back)`}
          onClick={() => void loadSample(e)}
        >
          {e.name}
        </button>
      ))}
    </div>
  );
}

function ImportError() {
  const error = useStudio((s) => s.importError);
  const clear = useStudio((s) => s.setImportError);
  if (!error) return null;
  return (
    <div className="inline-alert" role="alert">
      <span>{error}</span>
      <button type="button" className="icon-button" aria-label="Dismiss" onClick={() => clear(null)}>
        <Icon name="close" />
      </button>
    </div>
  );
}

function SaveIndicator() {
  const save = useStudio((s) => s.save);
  const text = {
    loading: 'Restoring…',
    saved: 'Saved',
    pending: 'Saving…',
    error: 'Not saved',
    off: 'Not saved (no storage)',
  }[save.state];
  return (
    <span
      className={`save-state save-${save.state}`}
      title={save.message ?? 'Saved in this browser (IndexedDB); a reload loses nothing'}
      aria-live="polite"
    >
      {text}
    </span>
  );
}

/**
 * Save the whole project (storyboard, settings, every version with its pixels, routing) as one
 * file, or open one in place of this project (asked first: the versions here are replaced).
 */
function ProjectButtons() {
  const setImportError = useStudio((s) => s.setImportError);
  const hasTakes = useStudio((s) => Object.keys(s.takes).length > 0);
  return (
    <>
      <button
        type="button"
        onClick={() =>
          download(
            new Blob([exportProject(currentSummary().name)], { type: 'application/json' }),
            `${fileName(currentSummary().name)}.mocproject.json`,
          )
        }
        title="Save the whole project — storyboard, settings, every version with its frames, the kept ones and the routing traces — as one file"
      >
        Save project
      </button>
      <FileButton
        label="Open project"
        title="Open a project file saved by this studio (it replaces the project here)"
        inputLabel="Project file to open"
        onFile={(file) => {
          const ask = (p: { name: string }): boolean =>
            !hasTakes ||
            window.confirm(
              `Open “${p.name}” (${file.name}) in place of this project? Its storyboard and versions replace the ones here (save this project first, or start a New project, to keep them).`,
            );
          void openProjectFile(file, ask).then((problem) => setImportError(problem));
        }}
      />
    </>
  );
}

/** A button that opens the file chooser for one JSON file (the hidden input is named `inputLabel`). */
function FileButton({
  label,
  title,
  inputLabel,
  onFile,
}: {
  label: string;
  title: string;
  inputLabel: string;
  onFile(file: File): void;
}) {
  const ref = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" onClick={() => ref.current?.click()} title={title}>
        {label}
      </button>
      <input
        ref={ref}
        type="file"
        accept=".json,application/json"
        hidden
        aria-label={inputLabel}
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) onFile(file);
        }}
      />
    </>
  );
}

/** The project being edited (its name, editable) and the other projects kept in this browser: switch, start a new one, delete. */
function Projects() {
  const [name, setName] = useState(() => currentSummary().name);
  const [others, setOthers] = useState<ProjectSummary[]>([]);
  const [problem, setProblem] = useState<string | null>(null);
  const running = useStudio((s) => isRunning(s.run.phase));
  const refresh = (): void =>
    void listProjects().then(setOthers, (e: unknown) =>
      setProblem(`Projects could not be listed: ${(e as Error).message}`),
    );
  useEffect(refresh, []);
  const act = (what: string, fn: () => Promise<void>): void => {
    setProblem(null);
    fn().then(
      () => {
        setName(currentSummary().name);
        refresh();
      },
      (e: unknown) => setProblem(`${what} failed: ${(e as Error).message} — the project here is unchanged.`),
    );
  };
  return (
    <div className="projects small-text">
      <label
        className="project-name"
        title="The name of this project (kept in this browser; also the name in a saved project file)"
      >
        <span className="field-caption">Project</span>
        <input
          type="text"
          aria-label="Project name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          onBlur={() => renameProject(name)}
        />
      </label>
      <select
        aria-label="Switch project"
        value=""
        disabled={running || others.length === 0}
        title={
          others.length
            ? 'Open another project kept in this browser (this one is kept)'
            : 'No other project yet: New project starts one'
        }
        onChange={(e) => e.target.value && act('Switching project', () => switchProject(e.target.value))}
      >
        <option value="">{others.length ? `Other projects (${others.length})…` : 'No other projects'}</option>
        {others.map((p) => (
          <option key={p.id} value={p.id}>
            {p.name} · {new Date(p.savedAt).toLocaleString()}
          </option>
        ))}
      </select>
      <button
        type="button"
        className="small"
        disabled={running}
        onClick={() => act('New project', () => newProject(`Project ${others.length + 2}`))}
        title="Keep this project and start a new, empty one"
      >
        New project
      </button>
      {others.length > 0 && (
        <select
          aria-label="Delete a project"
          value=""
          onChange={(e) =>
            e.target.value &&
            window.confirm('Delete that project for good?') &&
            act('Deleting', () => deleteProject(e.target.value))
          }
        >
          <option value="">Delete…</option>
          {others.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      )}
      {problem && (
        <p className="error-text" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}

/** A file name for a project name (letters, digits, '-' and '_' only). */
function fileName(name: string): string {
  return name.replace(/[^\w-]+/g, '-').replace(/^-+|-+$/g, '') || 'project';
}
