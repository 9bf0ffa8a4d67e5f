/**
 * How long a run will take on this adapter, before it starts: every finished run records its
 * mean ms per step for (model, adapter, attention mode, shape) in localStorage; an estimate uses
 * the record of the same shape, else the nearest one scaled by the number of frames (rough:
 * MoC's cost grows about linearly with frames at a fixed top-k, dense attention's faster).
 * Also tells a CPU fallback adapter (SwiftShader and the like) from a GPU.
 */
import type { AdapterSummary } from '../worker/protocol.ts';

/** One finished run's speed. */
export interface StepRecord {
  model: string;
  adapter: string;
  mode: string;
  /** Frames of the whole board (kept shots are part of every step's sequence too). */
  frames: number;
  shots: number;
  msPerStep: number;
  at: number;
}

/** What a run is, for looking up records. */
export type RunShape = Omit<StepRecord, 'msPerStep' | 'at'>;

export interface RunEstimate {
  msPerStep: number;
  totalMs: number;
  /** The record it came from, and whether its shape was the same or it was scaled. */
  from: StepRecord;
  scaled: boolean;
}

export const STEP_TIMES_KEY = 'moc-studio:step-times';
/** Records kept (newest first); older ones are dropped. */
export const MAX_STEP_RECORDS = 32;

type Store = Pick<Storage, 'getItem' | 'setItem'>;

function storage(): Store | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null; // storage blocked (privacy settings): no estimates, nothing else changes
  }
}

const sameKind = (a: RunShape, b: RunShape): boolean =>
  a.model === b.model && a.adapter === b.adapter && a.mode === b.mode;
const sameShape = (a: RunShape, b: RunShape): boolean => sameKind(a, b) && a.frames === b.frames && a.shots === b.shots;

/** The records kept in `store` (malformed entries are skipped). */
export function loadStepRecords(store: Store | null = storage()): StepRecord[] {
  try {
    const raw: unknown = JSON.parse(store?.getItem(STEP_TIMES_KEY) ?? '[]');
    if (!Array.isArray(raw)) return [];
    return raw.filter(
      (r): r is StepRecord =>
        typeof r === 'object' &&
        r !== null &&
        typeof r.model === 'string' &&
        typeof r.adapter === 'string' &&
        typeof r.mode === 'string' &&
        r.frames > 0 &&
        r.shots > 0 &&
        r.msPerStep > 0 &&
        Number.isFinite(r.msPerStep),
    );
  } catch {
    return [];
  }
}

/** Keeps `rec` (replacing the record of the same shape); never throws. */
export function recordStepTime(rec: StepRecord, store: Store | null = storage()): void {
  if (!(rec.msPerStep > 0) || !Number.isFinite(rec.msPerStep) || rec.frames < 1) return;
  const list = [rec, ...loadStepRecords(store).filter((r) => !sameShape(r, rec))].slice(0, MAX_STEP_RECORDS);
  try {
    store?.setItem(STEP_TIMES_KEY, JSON.stringify(list));
  } catch {
    // quota or blocked storage: the estimate is a convenience, the run is unaffected
  }
}

/** The estimate for `steps` steps of `shape`, or null when no run of this model, adapter and mode was recorded. */
export function estimateRun(
  shape: RunShape,
  steps: number,
  records: readonly StepRecord[] = loadStepRecords(),
): RunEstimate | null {
  const same = records.find((r) => sameShape(r, shape));
  if (same) return { msPerStep: same.msPerStep, totalMs: same.msPerStep * steps, from: same, scaled: false };
  let best: StepRecord | null = null;
  for (const r of records) {
    if (!sameKind(r, shape)) continue;
    if (!best || Math.abs(Math.log(r.frames / shape.frames)) < Math.abs(Math.log(best.frames / shape.frames))) best = r;
  }
  if (!best) return null;
  const msPerStep = (best.msPerStep * shape.frames) / best.frames;
  return { msPerStep, totalMs: msPerStep * steps, from: best, scaled: true };
}

/** True for an adapter that runs on the CPU (SwiftShader, llvmpipe, WARP…): generation is slow there. */
export function isCpuAdapter(adapter: AdapterSummary | null, name: string | null = null): boolean {
  if (adapter?.isFallback) return true;
  const text = [name, adapter?.vendor, adapter?.architecture, adapter?.device, adapter?.description]
    .filter(Boolean)
    .join(' ');
  return /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b|\bcpu\b/i.test(text);
}

/** The shape of a run of the board as it stands, with the selected model and attention, on the adapter in use. */
export function runShape(s: {
  board: { shots: ReadonlyArray<{ frames: number }> };
  settings: { model: string | null; attention: { mode: string } };
  model: { name: string | null };
  engine: { adapterName: string | null };
}): RunShape {
  return {
    model: s.model.name ?? s.settings.model ?? '?',
    adapter: s.engine.adapterName ?? '?',
    mode: s.settings.attention.mode,
    frames: s.board.shots.reduce((n, sh) => n + sh.frames, 0),
    shots: s.board.shots.length,
  };
}
