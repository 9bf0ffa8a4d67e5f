/**
 * Autosave in IndexedDB: the storyboard (with the studio's shot ids), the generation settings,
 * every finished take of every shot (pixels included), and the plan of the run in progress or
 * interrupted (with the step it reached), so a reload loses nothing and can resume that run.
 *
 * Two kinds of versions, each with its migration hook:
 * - the database schema (`DB_VERSION`, object stores), upgraded in `upgrade()` step by step;
 * - the record format of what is stored (`FORMAT`), upgraded on read by `migrateBoardRecord`
 *   `migrateTakeRecord` and `migrateRunRecord`. A record from a newer studio is refused with a StorageError
 *   instead of being misread, and the studio starts from a fresh board without deleting it.
 *   Settings fields added since format 1 are filled in on read by `migrateSettings`.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AttentionOptions, GenerateRequest } from '../model/api.ts';
import type { Storyboard } from '../model/storyboard.ts';
import { isAttentionMode } from '../model/api.ts';
import { parseStoryboard } from '../model/storyboard.ts';
import { withIds, type Board } from './board-ops.ts';
import {
  ATTENTION_KEYS,
  DEFAULT_SETTINGS,
  RUN_KINDS,
  type GenerationSettings,
  type RunPlan,
  type TakeMeta,
} from './types.ts';

export const DB_NAME = 'moc-studio';
/** IndexedDB schema version: bump it and add a step to `upgrade()` when the stores change. */
export const DB_VERSION = 1;
/** Record format version: bump it and add a migration below when a record's shape changes. */
export const FORMAT = 1;

/** What the `kv` store holds under `board`. */
export interface BoardRecord {
  format: typeof FORMAT;
  board: Storyboard;
  shotIds: string[];
  /** Chosen take per shot id. */
  chosen: Record<string, string>;
  savedAt: number;
  /**
   * Counts the saves (0 for records written before it existed). A tab saves only over the
   * revision it last read or wrote, so a stale tab cannot silently replace another tab's board
   * (`saveBoard` throws ConflictError instead).
   */
  rev: number;
}

export interface SettingsRecord {
  format: typeof FORMAT;
  settings: GenerationSettings;
}

/** A take with its pixels: RGBA [frames, height, width, 4]. */
export interface TakeRecord {
  format: typeof FORMAT;
  meta: TakeMeta;
  pixels: Uint8ClampedArray;
}

/**
 * What the `kv` store holds under `run`: the run in progress, or the one a device loss, a worker
 * crash or the page going away interrupted, with its request as it was (kept shots' pixels
 * included), so it can be resumed after a reload. Written when a run starts, deleted when it
 * ends otherwise or the offer to resume it is dismissed.
 */
export interface RunRecord {
  format: typeof FORMAT;
  /** This run's id: tells its step record (`run-step`) from another run's. */
  id: string;
  /** The model it was made for (null: the index's default, as the settings say). */
  model: string | null;
  plan: RunPlan;
  savedAt: number;
}

/** What the `kv` store holds under `run-step`: the step the run under `run` reached (small, written every step). */
export interface RunStepRecord {
  format: typeof FORMAT;
  id: string;
  step: number;
}

/** A saved run as `loadRun` reads it: the record and the step it reached (0 when not known). */
export type SavedRun = RunRecord & { step: number };

interface StudioDb extends DBSchema {
  kv: { key: string; value: unknown };
  takes: { key: string; value: unknown };
}

export class StorageError extends Error {
  override name = 'StorageError';
}

/** The saved board changed in another tab since this tab last read or wrote it. */
export class ConflictError extends StorageError {
  override name = 'ConflictError';
}

/**
 * Brings a stored board record up to FORMAT.
 * - format 0 (or none): a bare storyboard JSON (what early builds and the CLI write) → new ids.
 * - format 1: current.
 * @throws StorageError for a record from a newer studio, or one that is not a storyboard.
 */
export function migrateBoardRecord(raw: unknown): BoardRecord {
  const rec = (raw ?? {}) as Record<string, unknown>;
  const format = typeof rec.format === 'number' ? rec.format : 0;
  if (format > FORMAT)
    throw new StorageError(`the saved storyboard has format ${format}, newer than this studio's ${FORMAT}`);
  let cur: BoardRecord;
  if (format === 0) {
    const b = withIds(parse(rec));
    cur = { format: 1, board: b.board, shotIds: b.shotIds, chosen: {}, savedAt: 0, rev: 0 };
  } else {
    const board = parse(rec.board);
    const ids =
      Array.isArray(rec.shotIds) && rec.shotIds.length === board.shots.length
        ? rec.shotIds.map(String)
        : withIds(board).shotIds;
    const rev = Number.isSafeInteger(rec.rev) && (rec.rev as number) >= 0 ? (rec.rev as number) : 0;
    cur = {
      format: 1,
      board,
      shotIds: ids,
      chosen: isStringMap(rec.chosen) ? rec.chosen : {},
      savedAt: Number(rec.savedAt) || 0,
      rev,
    };
  }
  // Later formats: `if (cur.format === 1) cur = v1ToV2(cur);` and so on, one step at a time.
  return cur;
}

/** Brings a stored take up to FORMAT. @throws StorageError for a newer or broken record. */
export function migrateTakeRecord(raw: unknown): TakeRecord {
  const rec = (raw ?? {}) as Partial<TakeRecord>;
  const format = typeof rec.format === 'number' ? rec.format : 0;
  if (format > FORMAT) throw new StorageError(`a saved take has format ${format}, newer than this studio's ${FORMAT}`);
  if (!rec.meta || !(rec.pixels instanceof Uint8ClampedArray)) throw new StorageError('a saved take has no pixels');
  const m = rec.meta;
  const problem = takeMetaProblem(m);
  if (problem) throw new StorageError(`a saved take is unreadable: ${problem}`);
  if (rec.pixels.length !== m.frames * m.width * m.height * 4) {
    throw new StorageError(`take ${m.id}: ${rec.pixels.length} bytes for ${m.frames}×${m.height}×${m.width} RGBA`);
  }
  return { format: 1, meta: m, pixels: rec.pixels };
}

/**
 * Brings a stored run record up to FORMAT, checking every field the studio reads (the worker
 * checks the request again against the model when the run is resumed).
 * @throws StorageError for a record from a newer studio, or one that is not a run.
 */
export function migrateRunRecord(raw: unknown): RunRecord {
  const rec = (raw ?? {}) as Record<string, unknown>;
  const format = typeof rec.format === 'number' ? rec.format : 0;
  if (format > FORMAT) throw new StorageError(`the saved run has format ${format}, newer than this studio's ${FORMAT}`);
  const bad: (what: string) => never = (what) => {
    throw new StorageError(`the saved run is unreadable: ${what}`);
  };
  if (format !== 1) bad('it has no format');
  if (typeof rec.id !== 'string') bad('it has no id');
  if (rec.model !== null && typeof rec.model !== 'string') bad('its model is not a name');
  const plan = (rec.plan ?? {}) as Partial<Record<keyof RunPlan, unknown>>;
  if (!RUN_KINDS.includes(plan.kind as RunPlan['kind']))
    bad(`kind ${JSON.stringify(plan.kind)} is not one of ${RUN_KINDS.join(', ')}`);
  const request = checkRequest(plan.request, bad);
  const { shotIds, targets } = plan;
  if (!isStringList(shotIds) || shotIds.length !== request.storyboard.shots.length)
    bad(`shotIds are not ${request.storyboard.shots.length} shot ids`);
  if (!isStringList(targets) || !targets.length || targets.some((t) => !shotIds.includes(t)))
    bad('targets are not shot ids of the run');
  return {
    format: 1,
    id: rec.id as string,
    model: rec.model as string | null,
    plan: { kind: plan.kind as RunPlan['kind'], request, shotIds: shotIds.slice(), targets: targets.slice() },
    savedAt: Number(rec.savedAt) || 0,
  };
}

/** The fields of a stored GenerateRequest that the studio relies on; `bad` throws with what is wrong. */
function checkRequest(raw: unknown, bad: (what: string) => never): GenerateRequest {
  const r = (raw ?? {}) as Partial<Record<keyof GenerateRequest, unknown>>;
  const storyboard = parse(r.storyboard, "the saved run's storyboard");
  if (!isCount(r.steps, 1)) bad(`steps ${String(r.steps)} is not a count of steps`);
  if (typeof r.guidance !== 'number' || !Number.isFinite(r.guidance))
    bad(`guidance ${String(r.guidance)} is not a number`);
  const a = (r.attention ?? {}) as Partial<Record<keyof AttentionOptions, unknown>>;
  if (attentionProblem(a)) bad('its attention options are not mode, topK, chunkFrames and causal');
  const keep = r.keep ?? [];
  if (
    !Array.isArray(keep) ||
    keep.some(
      (k: { shot?: unknown; frames?: unknown }) =>
        !isCount(k?.shot, 0) ||
        (k.shot as number) >= storyboard.shots.length ||
        !(k.frames instanceof Uint8ClampedArray),
    )
  ) {
    bad('its kept shots are not shots of the storyboard with their pixels');
  }
  for (const key of ['previewEvery', 'traceEvery'] as const)
    if (r[key] !== undefined && !isCount(r[key], 0)) bad(`${key} ${String(r[key])} is not a count`);
  if (r.profile !== undefined && typeof r.profile !== 'boolean') bad('profile is not true or false');
  return {
    storyboard,
    steps: r.steps as number,
    guidance: r.guidance as number,
    attention: {
      mode: a.mode as AttentionOptions['mode'],
      topK: a.topK as number,
      chunkFrames: a.chunkFrames as number,
      causal: a.causal as boolean,
    },
    keep: keep as NonNullable<GenerateRequest['keep']>,
    ...(r.previewEvery !== undefined ? { previewEvery: r.previewEvery as number } : {}),
    ...(r.traceEvery !== undefined ? { traceEvery: r.traceEvery as number } : {}),
    ...(r.profile !== undefined ? { profile: r.profile as boolean } : {}),
  };
}

const isCount = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** What is wrong with a stored take's metadata (every field the studio reads), or null. */
export function takeMetaProblem(m: Partial<Record<keyof TakeMeta, unknown>>): string | null {
  for (const k of ['id', 'shotId', 'caption', 'globalCaption', 'model'] as const)
    if (typeof m[k] !== 'string') return `${k} is not text`;
  for (const k of ['frames', 'width', 'height', 'steps'] as const)
    if (!isCount(m[k], 1, 4096)) return `${k} ${String(m[k])} is not a count in 1..4096`;
  if (!isCount(m.seed, 0, 0xffffffff)) return `seed ${String(m.seed)} is not a seed`;
  for (const k of ['createdAt', 'guidance', 'runMs', 'sparsity'] as const)
    if (!isFiniteNumber(m[k])) return `${k} ${String(m[k])} is not a number`;
  if (attentionProblem(m.attention)) return `attention: ${attentionProblem(m.attention)}`;
  return null;
}

function attentionProblem(raw: unknown): string | null {
  const a = (raw ?? {}) as Partial<Record<keyof AttentionOptions, unknown>>;
  if (!isAttentionMode(a.mode) || !isCount(a.topK, 0) || !isCount(a.chunkFrames, 1) || typeof a.causal !== 'boolean')
    return 'not mode, topK, chunkFrames and causal';
  return null;
}

/**
 * Saved settings checked field by field: a bad field (`guidance: null`, a fractional step
 * count, …) is replaced by its default and named in `problems`; the rest is kept.
 */
export function checkSettings(saved: GenerationSettings): { settings: GenerationSettings; problems: string[] } {
  const problems: string[] = [];
  const out = { ...saved };
  const fix = <K extends keyof GenerationSettings>(k: K, ok: boolean): void => {
    if (ok) return;
    problems.push(`${k} ${JSON.stringify(saved[k]) ?? 'undefined'}`);
    out[k] = DEFAULT_SETTINGS[k];
  };
  fix('model', saved.model === null || typeof saved.model === 'string');
  fix('steps', isCount(saved.steps, 1, 1000));
  fix('guidance', isFiniteNumber(saved.guidance));
  fix('attention', attentionProblem(saved.attention) === null);
  fix(
    'attentionByHand',
    Array.isArray(saved.attentionByHand) && saved.attentionByHand.every((k) => ATTENTION_KEYS.includes(k)),
  );
  return { settings: out, problems };
}

/** The attention options every studio started from before settings said which were set by hand. */
const ATTENTION_BEFORE_BY_HAND: AttentionOptions = { mode: 'moc', topK: 2, chunkFrames: 1, causal: true };

/**
 * Fills in what settings saved by an earlier studio lack. Those saved before
 * `attentionByHand` existed count the attention options that differ from that studio's fixed
 * defaults as set by hand, so a loaded model's defaults do not overwrite them.
 */
export function migrateSettings(saved: Partial<GenerationSettings>): GenerationSettings {
  const attention = { ...DEFAULT_SETTINGS.attention, ...saved.attention };
  const attentionByHand = Array.isArray(saved.attentionByHand)
    ? ATTENTION_KEYS.filter((k) => saved.attentionByHand!.includes(k))
    : ATTENTION_KEYS.filter((k) => attention[k] !== ATTENTION_BEFORE_BY_HAND[k]);
  return { ...DEFAULT_SETTINGS, ...saved, attention, attentionByHand };
}

function parse(value: unknown, what = 'the saved storyboard'): Storyboard {
  try {
    return parseStoryboard(value);
  } catch (e) {
    throw new StorageError(`${what} is unreadable: ${(e as Error).message}`);
  }
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

let dbPromise: Promise<IDBPDatabase<StudioDb>> | null = null;

/** Opens (and creates or upgrades) the studio's database. */
function db(): Promise<IDBPDatabase<StudioDb>> {
  dbPromise ??= openDB<StudioDb>(DB_NAME, DB_VERSION, {
    upgrade(database, oldVersion) {
      // One step per schema version; each runs once, in order.
      if (oldVersion < 1) {
        database.createObjectStore('kv');
        database.createObjectStore('takes');
      }
    },
    blocking() {
      // A newer studio in another tab wants to upgrade: let it.
      void dbPromise?.then((d) => d.close());
      dbPromise = null;
    },
  });
  return dbPromise;
}

/** True when this page can use IndexedDB (private modes and some embeds cannot). */
export function storageAvailable(): boolean {
  return typeof indexedDB !== 'undefined';
}

/**
 * Saves the board over revision `rev` (the one this tab last read or wrote; 0 for none) and
 * returns the new revision. @throws ConflictError, writing nothing, when the saved board has
 * another revision: another tab saved since.
 */
export async function saveBoard(b: Board, chosen: Record<string, string>, rev: number): Promise<number> {
  const tx = (await db()).transaction('kv', 'readwrite');
  const cur = (await tx.store.get('board')) as Partial<BoardRecord> | undefined;
  const curRev = cur === undefined ? 0 : Number.isSafeInteger(cur.rev) ? cur.rev! : 0;
  if (curRev !== rev) {
    tx.abort();
    await tx.done.catch(() => undefined);
    throw new ConflictError('the storyboard was changed in another tab since this tab loaded it');
  }
  const rec: BoardRecord = {
    format: FORMAT,
    board: b.board,
    shotIds: b.shotIds,
    chosen,
    savedAt: Date.now(),
    rev: rev + 1,
  };
  await Promise.all([tx.store.put(rec, 'board'), tx.done]);
  return rev + 1;
}

/** The saved board, migrated; null when none was saved. @throws StorageError (see migrateBoardRecord). */
export async function loadBoard(): Promise<BoardRecord | null> {
  const raw = await (await db()).get('kv', 'board');
  return raw === undefined ? null : migrateBoardRecord(raw);
}

export async function saveSettings(settings: GenerationSettings): Promise<void> {
  const rec: SettingsRecord = { format: FORMAT, settings };
  await (await db()).put('kv', rec, 'settings');
}

/** The saved settings, migrated and checked (bad fields replaced by defaults and named in `problems`); null when none. */
export async function loadSettings(): Promise<{ settings: GenerationSettings; problems: string[] } | null> {
  const raw = (await (await db()).get('kv', 'settings')) as Partial<SettingsRecord> | undefined;
  if (
    !raw ||
    typeof raw.format !== 'number' ||
    raw.format > FORMAT ||
    typeof raw.settings !== 'object' ||
    raw.settings === null
  )
    return null;
  return checkSettings(migrateSettings(raw.settings));
}

export async function saveTake(meta: TakeMeta, pixels: Uint8ClampedArray): Promise<void> {
  const rec: TakeRecord = { format: FORMAT, meta, pixels };
  await (await db()).put('takes', rec, meta.id);
}

export async function deleteTakes(ids: readonly string[]): Promise<void> {
  const tx = (await db()).transaction('takes', 'readwrite');
  await Promise.all([...ids.map((id) => tx.store.delete(id)), tx.done]);
}

/** Every saved take, migrated; unreadable ones are skipped and named in `skipped`. */
export async function loadTakes(): Promise<{ takes: TakeRecord[]; skipped: string[] }> {
  const all = await (await db()).getAll('takes');
  const takes: TakeRecord[] = [];
  const skipped: string[] = [];
  for (const raw of all) {
    try {
      takes.push(migrateTakeRecord(raw));
    } catch (e) {
      skipped.push((e as Error).message);
    }
  }
  return { takes, skipped };
}

/** Keeps a run (and forgets the step the previous one reached). */
export async function saveRun(id: string, model: string | null, plan: RunPlan): Promise<void> {
  const rec: RunRecord = { format: FORMAT, id, model, plan, savedAt: Date.now() };
  const tx = (await db()).transaction('kv', 'readwrite');
  await Promise.all([tx.store.put(rec, 'run'), tx.store.delete('run-step'), tx.done]);
}

/** Notes the step the run `id` reached. */
export async function saveRunStep(id: string, step: number): Promise<void> {
  const rec: RunStepRecord = { format: FORMAT, id, step };
  await (await db()).put('kv', rec, 'run-step');
}

/** Forgets the kept run. */
export async function clearRun(): Promise<void> {
  const tx = (await db()).transaction('kv', 'readwrite');
  await Promise.all([tx.store.delete('run'), tx.store.delete('run-step'), tx.done]);
}

/**
 * The kept run, migrated, with the step it reached (0 when its step record is missing, another
 * run's or unreadable); null when none is kept. @throws StorageError (see migrateRunRecord).
 */
export async function loadRun(): Promise<SavedRun | null> {
  const d = await db();
  const [raw, rawStep] = await Promise.all([d.get('kv', 'run'), d.get('kv', 'run-step')]);
  if (raw === undefined) return null;
  const rec = migrateRunRecord(raw);
  const s = (rawStep ?? {}) as Partial<RunStepRecord>;
  const known =
    s.format === FORMAT &&
    s.id === rec.id &&
    Number.isInteger(s.step) &&
    s.step! >= 0 &&
    s.step! <= rec.plan.request.steps;
  return { ...rec, step: known ? s.step! : 0 };
}

/** What `load` read, or — when it throws — the one-line problem "`what` could not be restored: …". */
export async function loadForRestore<T>(
  what: string,
  load: () => Promise<T>,
): Promise<{ value: T } | { problem: string }> {
  try {
    return { value: await load() };
  } catch (e) {
    return { problem: `${what} could not be restored: ${(e as Error).message}` };
  }
}

/** Closes the database (tests). */
export async function closeDb(): Promise<void> {
  const p = dbPromise;
  dbPromise = null;
  if (p) (await p).close();
}
