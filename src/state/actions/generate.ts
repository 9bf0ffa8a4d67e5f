/**
 * Generation actions: sample every shot, regenerate one shot with the others kept as clean
 * context (GenerateRequest.keep), or append a shot after the finished ones; progress, time
 * left, live previews and routing traces go into the store as they arrive; finished shots
 * become takes, kept in media.ts and IndexedDB. A run that a device loss or a worker crash cuts
 * short is kept, request and all, so it can be resumed once the engine is back. The run in
 * progress is kept in IndexedDB too (persist.ts, `run`) until it ends: after a reload, a run
 * that was interrupted, or still running when the page went away, is offered again.
 */
import type { GenerateProgress, GenerateRequest, GenerateResult } from '../../model/api.ts';
import { WorkerError } from '../../worker/client.ts';
import type { EngineErrorInfo } from '../../worker/protocol.ts';
import { addShot, newShotId, updateShot } from '../board-ops.ts';
import { clearPreviews, dropTakes, getTake, putPreview, putTake } from '../media.ts';
import * as persist from '../persist.ts';
import { estimateRun, recordStepTime, runShape, type RunShape } from '../run-estimate.ts';
import { isRunning } from '../slices/generation.ts';
import {
  forgetResume,
  holdRunLock,
  keepRun,
  keepRunStep,
  offerResume,
  otherModel,
  record,
  runLiveElsewhere,
} from '../run-record.ts';
import { useStudio } from '../store.ts';
import type { RunKind, RunPlan, TakeMeta } from '../types.ts';
import { regenerateSeed } from '../versions.ts';
import { engineClient, onEngineLost } from './engine.ts';
import { ensureModel } from './model.ts';
import { keepRouting } from './routing.ts';

/**
 * The request for a run. `regenerate` keeps every other shot that has a take of the right
 * length (shots without one are sampled too); `append` keeps every shot but the last.
 */
export function planRun(kind: RunKind, targetShotId?: string): RunPlan {
  const s = useStudio.getState();
  const shotIds = s.shotIds.slice();
  const keep: NonNullable<GenerateRequest['keep']> = [];
  const targets: string[] = [];
  shotIds.forEach((id, shot) => {
    const wantsNew =
      kind === 'all' ||
      (kind === 'regenerate' && id === targetShotId) ||
      (kind === 'append' && shot === shotIds.length - 1);
    const take = wantsNew ? undefined : keptTake(id, s.board.shots[shot].frames);
    if (take) keep.push({ shot, frames: take });
    else targets.push(id);
  });
  const every = Math.max(1, Math.round(s.settings.steps / 12));
  const request: GenerateRequest = {
    storyboard: s.board,
    steps: s.settings.steps,
    guidance: s.settings.guidance,
    attention: { ...s.settings.attention },
    keep,
    previewEvery: every,
    traceEvery: every,
  };
  return { kind, request, shotIds, targets };
}

/** The shot captions a run generates, in its order (what the routing graph reads the characters from). */
function runCaptions(plan: RunPlan): string[] {
  return plan.request.storyboard.shots.map((shot) => shot.caption);
}

/** What the run is, for its time estimate: its own board and attention, the model and adapter in use. */
function planShape(plan: RunPlan): RunShape {
  const s = useStudio.getState();
  return runShape({
    ...s,
    board: plan.request.storyboard,
    settings: { ...s.settings, attention: plan.request.attention },
  });
}

/** The chosen take's pixels of a shot, if it has the shot's current length. */
function keptTake(shotId: string, frames: number): Uint8ClampedArray | undefined {
  const id = useStudio.getState().chosen[shotId];
  const clip = id ? getTake(id) : undefined;
  return clip && clip.frames === frames ? clip.pixels : undefined;
}

export { runKept, runLiveElsewhere } from '../run-record.ts';

/** Samples every shot. */
export function generateAll(): Promise<void> {
  return run(planRun('all'));
}

/**
 * Samples one shot again, every other finished shot kept as it is. A shot unchanged since its
 * kept version gets a new seed (one undoable edit, shown on its card; the old version keeps its
 * seed and Keep brings it back); a changed shot is sampled with the seed it has.
 */
export function regenerateShot(shotId: string): Promise<void> {
  const st = useStudio.getState();
  const index = st.shotIds.indexOf(shotId);
  if (index < 0) return Promise.resolve();
  const kept = st.takes[shotId]?.find((t) => t.id === st.chosen[shotId]);
  const { seed, changed } = regenerateSeed(st.board.shots[index], kept);
  if (changed) st.edit((b) => updateShot(b, index, { seed }));
  return run(planRun('regenerate', shotId));
}

/** Adds a shot at the end with `caption` and samples only it, every earlier shot kept. */
export function appendShot(caption: string, frames?: number): Promise<void> {
  const st = useStudio.getState();
  const id = newShotId();
  st.edit((b) => {
    const added = addShot(b, b.board.shots.length - 1, id);
    return updateShot(added, added.board.shots.length - 1, { caption, ...(frames ? { frames } : {}) });
  });
  return run(planRun('append'));
}

/** Asks the worker to stop; the run ends as `cancelled` at its next step. */
export function cancelGeneration(): void {
  const st = useStudio.getState();
  if (!isRunning(st.run.phase)) return;
  st.setRun({ phase: 'cancelling' });
  engineClient()?.cancel();
}

/**
 * Runs the interrupted run again with the same request: the same storyboard as it was then
 * (shots, captions, seeds), settings and kept shots. Finished takes stay as they are.
 */
export function resumeGeneration(): Promise<void> {
  const plan = record.interrupted?.plan;
  if (!plan || !useStudio.getState().interrupted || isRunning(useStudio.getState().run.phase)) return Promise.resolve();
  return run(plan);
}

/** Forgets the interrupted run, here and in IndexedDB (nothing else changes). */
export function dismissResume(): void {
  forgetResume();
  useStudio.getState().setInterrupted(null);
}

/**
 * Offers again the run kept in IndexedDB: one that was interrupted before the page was last
 * closed or reloaded, or was still running when it went away (the page went away mid-run). A
 * run made for another model than the selected one is forgotten, as `selectModel` forgets it.
 * Call it once the settings are restored. Never throws: returns a one-line problem, or null.
 */
export async function restoreInterruptedRun(): Promise<string | null> {
  const got = await persist.loadForRestore('The interrupted run', persist.loadRun);
  if ('problem' in got) return got.problem;
  const saved = got.value;
  if (!saved || record.current) return null;
  if (await runLiveElsewhere())
    return 'A run is in progress in another tab of the studio: it is not offered for resuming here';
  if (otherModel(saved.model, useStudio.getState().settings.model)) forgetResume();
  else offerResume(saved.plan, saved.model, saved.step);
  return null;
}

async function run(plan: RunPlan): Promise<void> {
  const st = useStudio.getState();
  if (isRunning(st.run.phase)) return;
  if (await runLiveElsewhere()) {
    st.setRun({
      phase: 'error',
      error: {
        code: 'busy',
        message: 'A run is in progress in another tab of the studio: wait for it to end there, or close that tab.',
      },
    });
    return;
  }
  dismissResume(); // a new run, or this one resumed, replaces the offer
  const startedAt = performance.now();
  const id = `run-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  const madeFor = st.model.name ?? st.settings.model;
  record.current = { plan, id, model: madeFor, sampled: false, release: holdRunLock(id) };
  void keepRun(() => persist.saveRun(id, madeFor, plan));
  const expected = estimateRun(planShape(plan), plan.request.steps);
  st.setRun({
    phase: 'preparing',
    kind: plan.kind,
    shotIds: plan.targets,
    step: 0,
    steps: plan.request.steps,
    startedAt: Date.now(),
    stepStartedAt: Date.now(),
    expectedMsPerStep: expected?.msPerStep ?? null,
    elapsedMs: 0,
    etaMs: expected?.totalMs ?? null,
    msPerStep: null,
    error: null,
  });
  st.beginRouting(plan.shotIds, runCaptions(plan)); // the last run's graph stays until this one's first trace
  clearPreviews(plan.targets);

  await ensureModel();
  const client = engineClient();
  const model = useStudio.getState().model;
  if (!client || model.phase !== 'ready') {
    return finish(plan, {
      code: client ? 'no-model' : 'not-initialised',
      message: client
        ? `No model is loaded${model.error ? `: ${model.error.message}` : ''}`
        : 'The engine is not ready',
    });
  }
  if (record.current?.plan !== plan || useStudio.getState().run.phase === 'cancelling')
    return finish(plan, { code: 'cancelled', message: 'Cancelled before the first step' });
  useStudio.getState().setRun({ phase: 'running', stepStartedAt: Date.now() });

  let lastStepAt = performance.now();
  try {
    const result = await client.generate(plan.request, (p) => {
      const now = performance.now();
      onProgress(plan, p, now - lastStepAt, now - startedAt);
      lastStepAt = now;
    });
    if (record.current?.plan === plan) record.current.sampled = true;
    await onResult(plan, result);
    finish(plan, null);
  } catch (e) {
    finish(plan, e instanceof WorkerError ? e.toInfo() : { code: 'internal', message: String(e) });
  }
}

function onProgress(plan: RunPlan, p: GenerateProgress, stepMs: number, elapsedMs: number): void {
  // progress comes on a channel of its own: a last message may arrive after the result, and must
  // not turn the finished run's routing stats back into live ones
  if (record.current?.plan !== plan || record.current.sampled) return;
  keepRunStep(record.current.id, p.step);
  const st = useStudio.getState();
  const size = st.model.info?.imageSize ?? 0;
  const perStep = p.step > 0 ? elapsedMs / p.step : null;
  st.setRun({
    step: p.step,
    steps: p.steps,
    elapsedMs,
    etaMs: perStep === null ? null : perStep * Math.max(0, p.steps - p.step),
    msPerStep: p.timings?.total ?? stepMs,
    stepStartedAt: Date.now(),
  });
  if (p.previews?.length && size > 0) {
    for (const pv of p.previews) {
      const id = plan.shotIds[pv.shot];
      if (id)
        putPreview(id, { pixels: pv.frames, frames: pv.frames.length / (size * size * 4), width: size, height: size });
    }
    st.bumpMedia();
  }
  if (p.trace) {
    st.pushTrace(p.trace);
    const last = p.trace.layers;
    const sp = last.length ? last.reduce((n, l) => n + mean(l.sparsity), 0) / last.length : 0;
    st.setRoutingStats({
      sparsity: sp,
      flopsVisited: 0,
      flopsDense: 0,
      msPerStep: p.timings?.total ?? stepMs,
      live: true,
    });
  }
}

async function onResult(plan: RunPlan, result: GenerateResult): Promise<void> {
  const st = useStudio.getState();
  const metas: TakeMeta[] = [];
  const now = Date.now();
  for (const g of result.shots) {
    const shotId = plan.shotIds[g.shot];
    if (!shotId || !plan.targets.includes(shotId)) continue; // kept shots come back unchanged
    const shot = plan.request.storyboard.shots[g.shot];
    const meta: TakeMeta = {
      id: `take-${now.toString(36)}-${g.shot}-${Math.floor(Math.random() * 1e6).toString(36)}`,
      shotId,
      createdAt: now + g.shot,
      caption: shot.caption,
      globalCaption: plan.request.storyboard.globalCaption,
      seed: g.seed,
      frames: g.frames.length / (g.width * g.height * 4),
      width: g.width,
      height: g.height,
      model: st.model.name ?? '?',
      steps: plan.request.steps,
      guidance: plan.request.guidance,
      attention: plan.request.attention,
      runMs: result.totalMs,
      sparsity: result.sparsity,
    };
    putTake(meta.id, { pixels: g.frames, frames: meta.frames, width: g.width, height: g.height });
    metas.push(meta);
  }
  const dropped = st.addTakes(metas);
  dropTakes(dropped);
  clearPreviews(plan.targets);
  st.setTraces(result.traces, plan.shotIds, runCaptions(plan));
  st.setRoutingOrigin({ attention: plan.request.attention, restored: false, stepsOf: null });
  const ms = result.timings.length ? result.timings.reduce((n, t) => n + t.total, 0) / result.timings.length : null;
  if (result.timings.length)
    recordStepTime({ ...planShape(plan), msPerStep: result.totalMs / result.timings.length, at: Date.now() });
  const stats = {
    sparsity: result.sparsity,
    flopsVisited: result.attentionFlops.visited,
    flopsDense: result.attentionFlops.dense,
    msPerStep: ms,
    live: false,
    reused: result.cache?.summary ?? null,
  };
  st.setRoutingStats(stats);
  for (const m of metas) unsaved.set(m.id, m);
  try {
    if (dropped.length) await persist.deleteTakes(dropped);
    await saveUnsavedTakes();
  } catch (e) {
    st.setSave(
      'error',
      `Finished shots could not be saved: ${(e as Error).message}${(e as Error).name === 'QuotaExceededError' ? " (the browser's storage for this site is full: delete takes you do not need)" : ''}; retrying at every change`,
    );
  }
  await keepRouting({
    takeIds: metas.map((m) => m.id),
    shotIds: plan.shotIds,
    captions: runCaptions(plan),
    attention: plan.request.attention,
    stats,
    traces: result.traces,
  });
}

/** Finished takes not yet in IndexedDB (a save failed: a full disk), retried by `saveUnsavedTakes`. */
const unsaved = new Map<string, TakeMeta>();

/**
 * Saves every finished take not saved yet (skipping ones deleted meanwhile).
 * @throws the first storage error; the takes not saved stay queued.
 */
export async function saveUnsavedTakes(): Promise<void> {
  for (const [id, m] of [...unsaved]) {
    const px = getTake(id)?.pixels;
    if (px) await persist.saveTake(m, px);
    unsaved.delete(id);
  }
}

function finish(plan: RunPlan, error: EngineErrorInfo | null): void {
  if (record.current?.plan !== plan) return;
  const { model, release } = record.current;
  record.current = null;
  release();
  const st = useStudio.getState();
  if (error?.code === 'device-lost' || error?.code === 'worker-failed') {
    // the same words whichever comes first: the run's rejection or the engine's loss notice
    const what = error.code === 'worker-failed' ? 'The engine worker stopped' : 'The GPU device was lost';
    error = {
      code: error.code,
      message: `${what} during generation. The engine restarts by itself; then resume the run from the banner, or press Generate.`,
    };
    offerResume(plan, model, st.run.step); // its record stays in IndexedDB, for a reload
  } else {
    void keepRun(() => persist.clearRun()); // done, cancelled or failed: nothing to resume
  }
  clearPreviews(plan.targets);
  st.abandonRouting(); // a run that sent no trace leaves the last run's graph as it was
  st.bumpMedia();
  if (!error) st.setRun({ phase: 'done', etaMs: 0, error: null });
  else if (error.code === 'cancelled') st.setRun({ phase: 'cancelled', etaMs: null, error: null });
  else st.setRun({ phase: 'error', etaMs: null, error });
}

/**
 * A lost device or a crashed worker ends the run in progress with a message that says what
 * happened, and keeps it to be resumed (a run whose frames have already come back finishes).
 * The offer goes, here and in IndexedDB, when the store forgets it (`selectModel`) or another
 * model than the run's is loaded.
 */
export function startRunRecovery(): void {
  onEngineLost((error) => {
    if (record.current && !record.current.sampled)
      finish(record.current.plan, {
        code: error.code === 'worker-failed' ? 'worker-failed' : 'device-lost',
        message: error.message,
      });
  });
  useStudio.subscribe((s, prev) => {
    if (!record.interrupted) return;
    if (prev.interrupted && !s.interrupted) forgetResume();
    else if (s.model.name !== prev.model.name && otherModel(record.interrupted.model, s.model.name)) dismissResume();
  });
}

/** Deletes one take (pixels and storage). */
export async function deleteTake(shotId: string, takeId: string): Promise<void> {
  useStudio.getState().removeTake(shotId, takeId);
  dropTakes([takeId]);
  await persist.deleteTakes([takeId]).catch(() => undefined);
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}
