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
import { addShot, newShotId, randomSeed, updateShot } from '../board-ops.ts';
import { clearPreviews, dropTakes, getTake, putPreview, putTake } from '../media.ts';
import * as persist from '../persist.ts';
import { isRunning } from '../slices/generation.ts';
import { useStudio } from '../store.ts';
import type { RunKind, RunPlan, TakeMeta } from '../types.ts';
import { engineClient, onEngineLost } from './engine.ts';
import { ensureModel } from './model.ts';

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
    const wantsNew = kind === 'all' || (kind === 'regenerate' && id === targetShotId) || (kind === 'append' && shot === shotIds.length - 1);
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

/** The chosen take's pixels of a shot, if it has the shot's current length. */
function keptTake(shotId: string, frames: number): Uint8ClampedArray | undefined {
  const id = useStudio.getState().chosen[shotId];
  const clip = id ? getTake(id) : undefined;
  return clip && clip.frames === frames ? clip.pixels : undefined;
}

/** The run in progress (`id` names its record in IndexedDB); `sampled` once the worker has answered (what remains needs no GPU). */
let current: { plan: RunPlan; id: string; model: string | null; sampled: boolean } | null = null;
/** The run offered for resuming and the model it was made for (the store's `interrupted` says what it was). */
let interrupted: { plan: RunPlan; model: string | null } | null = null;

/** Samples every shot. */
export function generateAll(): Promise<void> {
  return run(planRun('all'));
}

/** Samples one shot again, every other finished shot kept as it is. */
export function regenerateShot(shotId: string, newSeed = true): Promise<void> {
  const st = useStudio.getState();
  const index = st.shotIds.indexOf(shotId);
  if (index < 0) return Promise.resolve();
  if (newSeed) st.edit((b) => updateShot(b, index, { seed: randomSeed() }));
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
  const plan = interrupted?.plan;
  if (!plan || !useStudio.getState().interrupted || isRunning(useStudio.getState().run.phase)) return Promise.resolve();
  return run(plan);
}

/** Forgets the interrupted run, here and in IndexedDB (nothing else changes). */
export function dismissResume(): void {
  forgetResume();
  useStudio.getState().setInterrupted(null);
}

function forgetResume(): void {
  interrupted = null;
  void keepRun(() => persist.clearRun());
}

/** Offers `plan` for resuming: the banner says what it was and the step it reached. */
function offerResume(plan: RunPlan, model: string | null, step: number): void {
  interrupted = { plan, model };
  useStudio.getState().setInterrupted({ kind: plan.kind, shots: plan.targets.length, step, steps: plan.request.steps });
}

/** True when a run made for model `made` cannot be resumed with model `now` (null: not known). */
function otherModel(made: string | null, now: string | null): boolean {
  return made !== null && now !== null && made !== now;
}

/** Writes of the kept run, one after another in the order asked (a run's start, its steps, its end). */
let runWrites: Promise<void> = Promise.resolve();
/** The step to write next, while a step write waits in `runWrites` (later steps replace it). */
let stepToWrite: { id: string; step: number } | null = null;

/** Queues a write of the kept run; a failure says in the save indicator that a reload cannot resume it. */
function keepRun(write: () => Promise<void>): Promise<void> {
  if (useStudio.getState().save.state === 'off') return runWrites;
  runWrites = runWrites.then(write).catch((e: unknown) => {
    useStudio.getState().setSave('error', `The run could not be kept for resuming after a reload: ${(e as Error).message}`);
  });
  return runWrites;
}

function keepRunStep(id: string, step: number): void {
  const queued = stepToWrite !== null;
  stepToWrite = { id, step };
  if (queued) return;
  void keepRun(async () => {
    const s = stepToWrite;
    stepToWrite = null;
    if (s) await persist.saveRunStep(s.id, s.step);
  });
}

/** Resolves once every write of the kept run asked for so far has been made (tests). */
export function runKept(): Promise<void> {
  return runWrites;
}

/**
 * Offers again the run kept in IndexedDB: one that was interrupted before the page was last
 * closed or reloaded, or was still running when it went away (the page went away mid-run). A
 * run made for another model than the selected one is forgotten, as `selectModel` forgets it.
 * Call it once the settings are restored. Never throws: returns a one-line problem, or null.
 */
export async function restoreInterruptedRun(): Promise<string | null> {
  let saved: persist.SavedRun | null;
  try {
    saved = await persist.loadRun();
  } catch (e) {
    return `The interrupted run could not be restored: ${(e as Error).message}`;
  }
  if (!saved || current) return null;
  if (otherModel(saved.model, useStudio.getState().settings.model)) forgetResume();
  else offerResume(saved.plan, saved.model, saved.step);
  return null;
}

async function run(plan: RunPlan): Promise<void> {
  const st = useStudio.getState();
  if (isRunning(st.run.phase)) return;
  dismissResume(); // a new run, or this one resumed, replaces the offer
  const startedAt = performance.now();
  const id = `run-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
  const madeFor = st.model.name ?? st.settings.model;
  current = { plan, id, model: madeFor, sampled: false };
  void keepRun(() => persist.saveRun(id, madeFor, plan));
  st.setRun({ phase: 'preparing', kind: plan.kind, shotIds: plan.targets, step: 0, steps: plan.request.steps, startedAt: Date.now(), elapsedMs: 0, etaMs: null, msPerStep: null, error: null });
  st.setTraces([], plan.shotIds, runCaptions(plan));
  st.setRoutingStats(null);
  clearPreviews(plan.targets);

  await ensureModel();
  const client = engineClient();
  const model = useStudio.getState().model;
  if (!client || model.phase !== 'ready') {
    return finish(plan, {
      code: client ? 'no-model' : 'not-initialised',
      message: client ? `No model is loaded${model.error ? `: ${model.error.message}` : ''}` : 'The engine is not ready',
    });
  }
  if (current?.plan !== plan || useStudio.getState().run.phase === 'cancelling') return finish(plan, { code: 'cancelled', message: 'Cancelled before the first step' });
  useStudio.getState().setRun({ phase: 'running' });

  let lastStepAt = performance.now();
  try {
    const result = await client.generate(plan.request, (p) => {
      const now = performance.now();
      onProgress(plan, p, now - lastStepAt, now - startedAt);
      lastStepAt = now;
    });
    if (current?.plan === plan) current.sampled = true;
    await onResult(plan, result);
    finish(plan, null);
  } catch (e) {
    finish(plan, e instanceof WorkerError ? e.toInfo() : { code: 'internal', message: String(e) });
  }
}

function onProgress(plan: RunPlan, p: GenerateProgress, stepMs: number, elapsedMs: number): void {
  if (current?.plan !== plan) return;
  keepRunStep(current.id, p.step);
  const st = useStudio.getState();
  const size = st.model.info?.imageSize ?? 0;
  const perStep = p.step > 0 ? elapsedMs / p.step : null;
  st.setRun({
    step: p.step,
    steps: p.steps,
    elapsedMs,
    etaMs: perStep === null ? null : perStep * Math.max(0, p.steps - p.step),
    msPerStep: p.timings?.total ?? stepMs,
  });
  if (p.previews?.length && size > 0) {
    for (const pv of p.previews) {
      const id = plan.shotIds[pv.shot];
      if (id) putPreview(id, { pixels: pv.frames, frames: pv.frames.length / (size * size * 4), width: size, height: size });
    }
    st.bumpMedia();
  }
  if (p.trace) {
    st.pushTrace(p.trace);
    const last = p.trace.layers;
    const sp = last.length ? last.reduce((n, l) => n + mean(l.sparsity), 0) / last.length : 0;
    st.setRoutingStats({ sparsity: sp, flopsVisited: 0, flopsDense: 0, msPerStep: p.timings?.total ?? stepMs, live: true });
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
  const ms = result.timings.length ? result.timings.reduce((n, t) => n + t.total, 0) / result.timings.length : null;
  st.setRoutingStats({ sparsity: result.sparsity, flopsVisited: result.attentionFlops.visited, flopsDense: result.attentionFlops.dense, msPerStep: ms, live: false, reused: result.cache?.summary ?? null });
  try {
    for (const m of metas) await persist.saveTake(m, getTake(m.id)!.pixels);
    if (dropped.length) await persist.deleteTakes(dropped);
  } catch (e) {
    st.setSave('error', `Finished shots could not be saved: ${(e as Error).message}`);
  }
}

function finish(plan: RunPlan, error: EngineErrorInfo | null): void {
  if (current?.plan !== plan) return;
  const { model } = current;
  current = null;
  const st = useStudio.getState();
  if (error?.code === 'device-lost' || error?.code === 'worker-failed') {
    // the same words whichever comes first: the run's rejection or the engine's loss notice
    const what = error.code === 'worker-failed' ? 'The engine worker stopped' : 'The GPU device was lost';
    error = { code: error.code, message: `${what} during generation. The engine restarts by itself; then resume the run from the banner, or press Generate.` };
    offerResume(plan, model, st.run.step); // its record stays in IndexedDB, for a reload
  } else {
    void keepRun(() => persist.clearRun()); // done, cancelled or failed: nothing to resume
  }
  clearPreviews(plan.targets);
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
    if (current && !current.sampled) finish(current.plan, { code: error.code === 'worker-failed' ? 'worker-failed' : 'device-lost', message: error.message });
  });
  useStudio.subscribe((s, prev) => {
    if (!interrupted) return;
    if (prev.interrupted && !s.interrupted) forgetResume();
    else if (s.model.name !== prev.model.name && otherModel(interrupted.model, s.model.name)) dismissResume();
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
