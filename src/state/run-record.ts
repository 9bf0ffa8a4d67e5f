/**
 * The record of the generation run: the run in progress, the run offered for resuming, and the
 * queue of writes that keep the run in IndexedDB (persist.ts, `run`) so a reload can offer it
 * again. Module state of the generation actions (actions/generate.ts), kept apart from them so
 * the actions read as what they do.
 */
import * as persist from './persist.ts';
import { useStudio } from './store.ts';
import type { RunPlan } from './types.ts';

export const record: {
  /** The run in progress (`id` names its record in IndexedDB); `sampled` once the worker has answered (what remains needs no GPU). */
  current: { plan: RunPlan; id: string; model: string | null; sampled: boolean; release: () => void } | null;
  /** The run offered for resuming and the model it was made for (the store's `interrupted` says what it was). */
  interrupted: { plan: RunPlan; model: string | null } | null;
} = { current: null, interrupted: null };

/** Forgets the run offered for resuming, here and in IndexedDB. */
export function forgetResume(): void {
  record.interrupted = null;
  void keepRun(() => persist.clearRun());
}

/** Offers `plan` for resuming: the banner says what it was and the step it reached. */
export function offerResume(plan: RunPlan, model: string | null, step: number): void {
  record.interrupted = { plan, model };
  useStudio.getState().setInterrupted({ kind: plan.kind, shots: plan.targets.length, step, steps: plan.request.steps });
}

/** True when a run made for model `made` cannot be resumed with model `now` (null: not known). */
export function otherModel(made: string | null, now: string | null): boolean {
  return made !== null && now !== null && made !== now;
}

/** Writes of the kept run, one after another in the order asked (a run's start, its steps, its end). */
let runWrites: Promise<void> = Promise.resolve();
/** The step to write next, while a step write waits in `runWrites` (later steps replace it). */
let stepToWrite: { id: string; step: number } | null = null;

/** Queues a write of the kept run; a failure says in the save indicator that a reload cannot resume it. */
export function keepRun(write: () => Promise<void>): Promise<void> {
  if (useStudio.getState().save.state === 'off') return runWrites;
  runWrites = runWrites.then(write).catch((e: unknown) => {
    useStudio
      .getState()
      .setSave('error', `The run could not be kept for resuming after a reload: ${(e as Error).message}`);
  });
  return runWrites;
}

/** Queues the step of run `id`; while a step write waits, later steps replace it. */
export function keepRunStep(id: string, step: number): void {
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
 * One owner per run across tabs (Web Locks): the tab running a run holds the lock
 * `moc-studio-run-<id>` until it ends, and another tab of the same profile neither offers that
 * run for resuming (nor deletes its record on Dismiss) nor starts a run of its own meanwhile.
 * Where the page has no Web Locks, nothing is coordinated.
 */
const RUN_LOCK = 'moc-studio-run-';

function locks(): LockManager | undefined {
  return (globalThis.navigator as Navigator | undefined)?.locks;
}

/** Takes run `id`'s lock; the returned function releases it. */
export function holdRunLock(id: string): () => void {
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  void locks()
    ?.request(`${RUN_LOCK}${id}`, () => held)
    .catch(() => undefined);
  return release;
}

/** True when another tab holds a run's lock (this tab's own run does not count). */
export async function runLiveElsewhere(): Promise<boolean> {
  const l = locks();
  if (!l) return false;
  const mine = record.current ? `${RUN_LOCK}${record.current.id}` : null;
  const { held = [] } = await l.query().catch(() => ({ held: [] }));
  return held.some((x) => x.name?.startsWith(RUN_LOCK) && x.name !== mine);
}
