/**
 * The list of models added from a folder on disk (their files are in the Cache API, see
 * actions/local-models.ts), kept in localStorage and shown beside the shipped models.
 */
import type { ModelEntry } from '../model/api.ts';

export const LOCAL_MODELS_KEY = 'moc-studio:local-models';
/** The folder (relative to the studio's base) their files are stored under; the worker's LOCAL_MODELS_DIR. */
export const LOCAL_PATH = 'local-models/';

type Store = Pick<Storage, 'getItem' | 'setItem'>;

function storage(): Store | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

/** The models added from disk, as model index entries (path under LOCAL_PATH). */
export function localModelEntries(store: Store | null = storage()): ModelEntry[] {
  try {
    const raw: unknown = JSON.parse(store?.getItem(LOCAL_MODELS_KEY) ?? '[]');
    if (!Array.isArray(raw)) return [];
    return raw
      .filter(
        (e): e is ModelEntry =>
          typeof e === 'object' &&
          e !== null &&
          typeof e.name === 'string' &&
          typeof e.path === 'string' &&
          e.path.startsWith(LOCAL_PATH),
      )
      .map((e) => ({
        name: e.name,
        path: e.path,
        description: String(e.description ?? ''),
        params: Number(e.params) || 0,
        bytes: Number(e.bytes) || 0,
      }));
  } catch {
    return [];
  }
}

/** Replaces the list. @throws Error when the browser refuses to store it. */
export function saveLocalModelEntries(entries: readonly ModelEntry[], store: Store | null = storage()): void {
  if (!store) throw new Error('this browser gives the page no localStorage');
  store.setItem(LOCAL_MODELS_KEY, JSON.stringify(entries));
}

export function isLocalEntry(e: ModelEntry): boolean {
  return e.path.startsWith(LOCAL_PATH);
}

/**
 * A model name for a folder: its name with anything but letters, digits, '.', '-' and '_'
 * replaced, never one of `taken` (a number is added).
 */
export function localModelName(folder: string, taken: readonly string[]): string {
  const base =
    folder
      .trim()
      .replace(/[^\w.-]+/g, '-')
      .replace(/^[-.]+|-+$/g, '')
      .slice(0, 48) || 'my-model';
  let name = base;
  for (let i = 2; taken.includes(name); i++) name = `${base}-${i}`;
  return name;
}
