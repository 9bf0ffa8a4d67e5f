/**
 * Autosave in IndexedDB: the storyboard (with the studio's shot ids), the generation settings,
 * and every finished take of every shot (pixels included), so a reload loses nothing.
 *
 * Two kinds of versions, each with its migration hook:
 * - the database schema (`DB_VERSION`, object stores), upgraded in `upgrade()` step by step;
 * - the record format of what is stored (`FORMAT`), upgraded on read by `migrateBoardRecord`
 *   and `migrateTakeRecord`. A record from a newer studio is refused with a StorageError
 *   instead of being misread, and the studio starts from a fresh board without deleting it.
 *   Settings fields added since format 1 are filled in on read by `migrateSettings`.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AttentionOptions } from '../model/api.ts';
import type { Storyboard } from '../model/storyboard.ts';
import { parseStoryboard } from '../worker/client.ts';
import { withIds, type Board } from './board-ops.ts';
import { ATTENTION_KEYS, DEFAULT_SETTINGS, type GenerationSettings, type TakeMeta } from './types.ts';

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

interface StudioDb extends DBSchema {
  kv: { key: string; value: unknown };
  takes: { key: string; value: unknown };
}

export class StorageError extends Error {
  override name = 'StorageError';
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
  if (format > FORMAT) throw new StorageError(`the saved storyboard has format ${format}, newer than this studio's ${FORMAT}`);
  let cur: BoardRecord;
  if (format === 0) {
    const b = withIds(parse(rec));
    cur = { format: 1, board: b.board, shotIds: b.shotIds, chosen: {}, savedAt: 0 };
  } else {
    const board = parse(rec.board);
    const ids = Array.isArray(rec.shotIds) && rec.shotIds.length === board.shots.length ? rec.shotIds.map(String) : withIds(board).shotIds;
    cur = { format: 1, board, shotIds: ids, chosen: isStringMap(rec.chosen) ? rec.chosen : {}, savedAt: Number(rec.savedAt) || 0 };
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
  if (rec.pixels.length !== m.frames * m.width * m.height * 4) {
    throw new StorageError(`take ${m.id}: ${rec.pixels.length} bytes for ${m.frames}×${m.height}×${m.width} RGBA`);
  }
  return { format: 1, meta: m, pixels: rec.pixels };
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

function parse(value: unknown): Storyboard {
  try {
    return parseStoryboard(value);
  } catch (e) {
    throw new StorageError(`the saved storyboard is unreadable: ${(e as Error).message}`);
  }
}

function isStringMap(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
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

export async function saveBoard(b: Board, chosen: Record<string, string>): Promise<void> {
  const rec: BoardRecord = { format: FORMAT, board: b.board, shotIds: b.shotIds, chosen, savedAt: Date.now() };
  await (await db()).put('kv', rec, 'board');
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

export async function loadSettings(): Promise<GenerationSettings | null> {
  const raw = (await (await db()).get('kv', 'settings')) as Partial<SettingsRecord> | undefined;
  if (!raw || typeof raw.format !== 'number' || raw.format > FORMAT || !raw.settings) return null;
  return migrateSettings(raw.settings);
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

/** Closes the database (tests). */
export async function closeDb(): Promise<void> {
  const p = dbPromise;
  dbPromise = null;
  if (p) (await p).close();
}
