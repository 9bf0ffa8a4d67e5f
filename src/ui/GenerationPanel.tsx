import { useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { appendShot, cancelGeneration, generateAll } from '../state/actions/generate.ts';
import { chooseModel, ensureModel } from '../state/actions/model.ts';
import { MAX_SHOTS } from '../state/board-ops.ts';
import { isLocalEntry } from '../state/local-models.ts';
import { estimateRun, isCpuAdapter, runShape } from '../state/run-estimate.ts';
import { isRunning } from '../state/slices/generation.ts';
import { routeViewText } from '../model/config.ts';
import { useStudio } from '../state/store.ts';
import { CaptionField } from './CaptionField.tsx';
import { formatBytes } from '../model/limits.ts';
import { formatDuration, formatMs, formatPercent } from './format.ts';
import { useNow, useVocab } from './hooks.ts';
import { LocalModels } from './LocalModels.tsx';
import { NumberField } from './NumberField.tsx';

/** Tooltips of the controls, in plain words (docs/MODEL_CARD.md and the design's MOC.md say more). */
export const HINTS = {
  model:
    'The trained network that draws the frames. Larger models look better and run slower; your own exported model folders can be added below.',
  steps:
    'Sampler steps: how many times the network refines the noise into frames. More steps, finer frames, longer runs (time grows in proportion).',
  guidance:
    'Classifier-free guidance: how strongly the captions steer the frames. 0 ignores the captions; around 3 is usual; very high values over-saturate.',
  attention:
    'How frames see each other. MoC: each chunk of frames attends to its own shot, the captions and the top-k most relevant chunks. Dense: everything attends to everything (slow, the baseline). Per shot: no memory across shots.',
  topK: 'Top-k: how many extra chunks (from other shots) each chunk may route to, chosen by relevance. More chunks, more memory across shots, more compute.',
  chunkFrames: 'Chunk frames: how many frames form one routable chunk. Larger chunks route coarser and cheaper.',
  causal:
    'Causal routing: a chunk may only route to chunks earlier in the video, so later shots remember earlier ones but not the reverse.',
} as const;

/** Model, sampler and attention settings; Generate / Cancel / Append; progress and time left. */
export function GenerationPanel() {
  const settings = useStudio((s) => s.settings);
  const setSettings = useStudio((s) => s.setSettings);
  const setAttention = useStudio((s) => s.setAttention);
  const run = useStudio((s) => s.run);
  const engineReady = useStudio((s) => s.engine.phase === 'ready');
  const modelReady = useStudio((s) => s.model.phase === 'ready');
  const shots = useStudio((s) => s.board.shots.length);
  const running = isRunning(run.phase);
  const a = settings.attention;
  const canGenerate = engineReady && modelReady && !running;

  return (
    <section className="panel generation" aria-labelledby="generation-title">
      <header className="panel-header">
        <h2 id="generation-title">Generate</h2>
      </header>
      <ModelPicker />
      <EngineNote />

      <div className="settings-grid">
        <NumberField
          label="Sampler steps"
          caption="Steps"
          hint={HINTS.steps}
          value={settings.steps}
          min={1}
          max={200}
          onChange={(steps) => setSettings({ steps })}
        />
        <NumberField
          label="Guidance"
          caption="Guidance"
          hint={HINTS.guidance}
          value={settings.guidance}
          min={0}
          max={20}
          step={0.5}
          digits={2}
          onChange={(guidance) => setSettings({ guidance })}
        />
        <label className="select-field" title={HINTS.attention}>
          <span className="field-caption">Attention</span>
          <select
            aria-label="Attention"
            value={a.mode}
            onChange={(e) => setAttention({ mode: e.target.value as typeof a.mode })}
          >
            <option value="moc" title="Mixture of Contexts: top-k routed chunks plus mandatory anchors">
              MoC
            </option>
            <option value="dense" title="Every token attends to every token (the baseline)">
              Dense
            </option>
            <option value="shot" title="Each shot attends only to itself and the captions: no memory across shots">
              Per shot
            </option>
          </select>
        </label>
        <NumberField
          label="Top-k"
          caption="Top-k"
          hint={HINTS.topK}
          value={a.topK}
          min={0}
          max={16}
          disabled={a.mode !== 'moc'}
          onChange={(topK) => setAttention({ topK })}
        />
        <NumberField
          label="Chunk frames"
          caption="Chunk frames"
          hint={HINTS.chunkFrames}
          value={a.chunkFrames}
          min={1}
          max={16}
          onChange={(chunkFrames) => setAttention({ chunkFrames })}
        />
        <label className="check-field" title={HINTS.causal}>
          <input
            type="checkbox"
            checked={a.causal}
            disabled={a.mode !== 'moc'}
            onChange={(e) => setAttention({ causal: e.target.checked })}
          />
          <span>Causal routing</span>
        </label>
      </div>

      <div className="button-row">
        <button
          type="button"
          className="primary"
          disabled={!canGenerate}
          onClick={() => void generateAll()}
          title={generateTitle(engineReady, modelReady, running)}
        >
          Generate
        </button>
        <button type="button" disabled={!running || run.phase === 'cancelling'} onClick={cancelGeneration}>
          Cancel
        </button>
        <span className="muted small-text">
          {shots} shot{shots > 1 ? 's' : ''}
        </span>
      </div>
      <RunEstimateNote />
      <RunProgress />
      <AppendShot disabled={!canGenerate || shots >= MAX_SHOTS} />
    </section>
  );
}

/**
 * On a phone the generation panel is far below the storyboard: this bar (shown at narrow widths
 * only, stuck to the top of the workspace) keeps Generate, Cancel and the step in reach.
 */
export function QuickGenerate() {
  const run = useStudio((s) => s.run);
  const canGenerate = useStudio(
    (s) => s.engine.phase === 'ready' && s.model.phase === 'ready' && !isRunning(s.run.phase),
  );
  const running = isRunning(run.phase);
  return (
    <div className="quick-generate" role="toolbar" aria-label="Quick generate">
      <button type="button" className="primary small" disabled={!canGenerate} onClick={() => void generateAll()}>
        Generate
      </button>
      <button
        type="button"
        className="small"
        disabled={!running || run.phase === 'cancelling'}
        onClick={cancelGeneration}
      >
        Cancel
      </button>
      <span className="muted small-text">
        {running ? `Step ${run.step} / ${run.steps}` : run.phase === 'done' ? 'Done' : ''}
      </span>
      <a className="small-text" href="#generation-title">
        Settings
      </a>
    </div>
  );
}

/** Why nothing can be generated while the engine is down, pointing at the engine check. */
function EngineNote() {
  const engine = useStudio((s) => s.engine);
  if (engine.phase !== 'error' || !engine.error || engine.error.code === 'device-lost') return null;
  return (
    <p className="callout-note small-text" role="note">
      Generation needs the GPU engine, which is not available: {engine.error.message}. See{' '}
      <a href="#engine-panel-title">Engine check</a> for how to enable WebGPU; the storyboard works meanwhile and is
      saved.
    </p>
  );
}

function generateTitle(engine: boolean, model: boolean, running: boolean): string {
  if (!engine) return 'The engine is not ready (see Engine check)';
  if (!model) return 'No model is loaded';
  if (running) return 'A generation is running';
  return 'Sample every shot of the storyboard';
}

function ModelPicker() {
  const model = useStudio((s) => s.model);
  const selected = useStudio((s) => s.settings.model);
  const engineStarting = useStudio((s) => s.engine.phase === 'starting' || s.engine.phase === 'idle');
  const running = useStudio((s) => isRunning(s.run.phase));
  const name = model.name ?? selected ?? model.entries.find((e) => e.default)?.name ?? model.entries[0]?.name ?? '';

  if (model.index === 'loading') return <p className="muted">Looking for models…</p>;
  if (model.index === 'missing') {
    return (
      <div className="callout-note" role="note">
        <strong>No model available.</strong> The studio looks for <code>public/models/index.json</code> (
        {model.indexError}). Put an exported model folder there (
        <code>python3 -m train.export … --out public/models/NAME</code>) and list it in the index, or add a model folder
        from disk; you can edit and save storyboards meanwhile.
        <LocalModels />
      </div>
    );
  }
  const p = model.progress;
  return (
    <div className="model-picker">
      <label className="select-field" title={HINTS.model}>
        <span className="field-caption">Model</span>
        <select aria-label="Model" value={name} disabled={running} onChange={(e) => void chooseModel(e.target.value)}>
          {model.entries.map((e) => (
            <option key={e.name} value={e.name}>
              {e.name}
              {e.bytes ? ` · ${formatBytes(e.bytes)}` : ''}
              {isLocalEntry(e) ? ' · yours' : ''}
            </option>
          ))}
        </select>
      </label>
      <div className="model-status" aria-live="polite">
        {model.phase === 'loading' && (
          <>
            <progress aria-label="Model download" max={p?.allTotal || 1} value={p?.allLoaded ?? 0} />
            <span className="muted small-text">
              {!p
                ? 'Fetching the manifest…'
                : p.stage === 'upload'
                  ? 'Checking the weights…'
                  : `${p.fromCache ? 'From cache' : 'Downloading'} ${p.file} · ${formatBytes(p.allLoaded)} / ${formatBytes(p.allTotal)}`}
            </span>
          </>
        )}
        {model.phase === 'ready' && model.info && (
          <span className="muted small-text">
            <span className="ok">Loaded</span> {model.info.imageSize}×{model.info.imageSize} px · {model.info.depth}{' '}
            layers · {model.info.heads} heads · width {model.info.dim} · {model.info.words.length} words ·{' '}
            <span
              title={`Routing scores with ${routeViewText(model.info.routeView)} (MOC.md §3b); attention always uses the rotated q and k.`}
            >
              routing view {model.info.routeView}
            </span>
          </span>
        )}
        {model.phase === 'none' && engineStarting && (
          <span className="muted small-text">Loads once the engine is ready.</span>
        )}
        {model.phase === 'error' && model.error && (
          <span className="error-text small-text" role="alert">
            {model.error.message}{' '}
            <button type="button" className="link-button" onClick={() => void ensureModel()}>
              Retry
            </button>
          </span>
        )}
      </div>
      {model.entries.find((e) => e.name === name)?.description && (
        <p className="muted small-text">{model.entries.find((e) => e.name === name)?.description}</p>
      )}
      <LocalModels />
    </div>
  );
}

/** Before a run: how long it should take here (from the last run of this model on this adapter), and a warning on a CPU adapter. */
function RunEstimateNote() {
  const shape = useStudio(useShallow((s) => runShape(s)));
  const steps = useStudio((s) => s.settings.steps);
  const engine = useStudio((s) => s.engine);
  const idle = useStudio((s) => !isRunning(s.run.phase));
  // read on every render: a finished run (the phase changes) has just added a record
  useStudio((s) => s.run.phase);
  const estimate = estimateRun(shape, steps);
  const cpu = engine.phase === 'ready' && isCpuAdapter(engine.adapter, engine.adapterName);
  if (!idle && !cpu) return null;
  return (
    <div className="run-estimate small-text" aria-label="Run estimate" role="note">
      {cpu && (
        <p className="warn-text">
          This adapter is a CPU fallback ({engine.adapterName}), not a GPU: every step runs on the processor and is
          slow. Few steps, short shots and a small model keep a run to minutes.
        </p>
      )}
      {idle && (
        <p className="muted">
          {estimate
            ? `About ${formatDuration(estimate.totalMs)} for ${steps} steps here (${formatMs(estimate.msPerStep)}/step, ${estimate.scaled ? `scaled from a run of ${estimate.from.frames} frames` : 'as the last run of this board size'}).`
            : 'No estimate yet for this model on this adapter: the first run measures it (its first step also compiles the kernels).'}
        </p>
      )}
    </div>
  );
}

function RunProgress() {
  const run = useStudio((s) => s.run);
  const stats = useStudio((s) => s.routing.stats);
  const now = useNow(run.phase === 'running' || run.phase === 'preparing' || run.phase === 'cancelling');
  const count = run.shotIds.length;
  const elapsed = isRunning(run.phase) ? Math.max(run.elapsedMs, now - run.startedAt) : run.elapsedMs;
  const inStep = Math.max(0, now - run.stepStartedAt);
  // the step in progress, as a fraction of the expected step time (the latest step's, else the estimate's); never full before it ends
  const perStep = run.msPerStep ?? run.expectedMsPerStep;
  const stepFraction = perStep ? Math.min(0.95, inStep / perStep) : null;
  const what =
    run.kind === 'regenerate'
      ? `Regenerating ${count} shot${count > 1 ? 's' : ''}`
      : run.kind === 'append'
        ? 'Appending a shot'
        : `Generating ${count} shot${count > 1 ? 's' : ''}`;
  const valueText = `Step ${run.step} of ${run.steps}${run.etaMs !== null ? `, about ${formatDuration(run.etaMs)} left` : ''}`;

  if (run.phase === 'idle') return null;
  return (
    <div className={`run-progress run-${run.phase}`}>
      {(isRunning(run.phase) || run.phase === 'done') && (
        <>
          <progress
            aria-label="Generation progress"
            aria-valuetext={valueText}
            max={run.steps || 1}
            value={run.phase === 'done' ? run.steps : run.step}
          />
          {run.phase === 'running' && (
            <progress
              className="step-progress"
              aria-label="Current step"
              aria-valuetext={
                stepFraction === null
                  ? `Step ${run.step + 1} running for ${formatDuration(inStep)}`
                  : `Step ${run.step + 1} about ${Math.round(stepFraction * 100)}% done (estimated from the step time)`
              }
              max={1}
              {...(stepFraction === null ? {} : { value: stepFraction })}
            />
          )}
          <p className="run-line small-text">
            {run.phase === 'preparing' && <span>{what}: loading the model…</span>}
            {run.phase === 'running' && (
              <span>
                {what} · step <strong>{run.step}</strong> / {run.steps} ·{' '}
                <span className="elapsed">{formatDuration(elapsed)} elapsed</span>
                {run.etaMs !== null && (
                  <> · ~{formatDuration(Math.max(0, run.etaMs - (run.step === 0 ? elapsed : 0)))} left</>
                )}
                {run.msPerStep !== null && <> · {formatMs(run.msPerStep)}/step</>}
              </span>
            )}
            {run.phase === 'cancelling' && <span>Cancelling after the current step…</span>}
            {run.phase === 'done' && (
              <span>
                <span className="ok">Done</span> · {count} shot{count > 1 ? 's' : ''} in {formatDuration(elapsed)}
                {stats && <> · attention sparsity {formatPercent(stats.sparsity)}</>}
              </span>
            )}
          </p>
        </>
      )}
      {run.phase === 'cancelled' && (
        <p className="small-text muted">
          Cancelled at step {run.step} of {run.steps}. Finished shots are unchanged.
        </p>
      )}
      {run.phase === 'error' && run.error && (
        <p className="error-text small-text" role="alert">
          Generation failed: {run.error.message} <code className="error-code">{run.error.code}</code>
        </p>
      )}
    </div>
  );
}

function AppendShot({ disabled }: { disabled: boolean }) {
  const [caption, setCaption] = useState('');
  const vocab = useVocab();
  const textLen = useStudio((s) => s.model.info?.textLen ?? null);
  return (
    <form
      className="append-shot"
      onSubmit={(e) => {
        e.preventDefault();
        if (!caption.trim()) return;
        void appendShot(caption.trim());
        setCaption('');
      }}
    >
      <h3 className="field-title">Append a shot</h3>
      <p className="muted small-text">
        Adds a shot at the end and samples only it; every earlier finished shot is kept as context.
      </p>
      <CaptionField
        label="New shot caption"
        value={caption}
        onChange={setCaption}
        vocab={vocab}
        maxTokens={textLen}
        placeholder="Character 1 grows in the snow, close-up."
      />
      <button type="submit" disabled={disabled || !caption.trim()}>
        Append shot
      </button>
    </form>
  );
}
