/**
 * Storyboard actions: restore the studio from IndexedDB, autosave it, import and export JSON,
 * and the sample storyboards. An import that fails says why in one line and leaves the
 * current board exactly as it was.
 */
import { MAX_STORYBOARD_BYTES, StoryboardError, parseStoryboardJson } from '../../model/storyboard.ts';
import { withIds } from '../board-ops.ts';
import { putTake } from '../media.ts';
import * as persist from '../persist.ts';
import type { SampleEntry } from '../slices/storyboard.ts';
import { useStudio } from '../store.ts';
import type { TakeMeta } from '../types.ts';
import { fetchJson } from './fetch-json.ts';
import { restoreInterruptedRun, saveUnsavedTakes } from './generate.ts';
import { restoreRouting } from './routing.ts';

export const AUTOSAVE_MS = 250;

/** The revision of the saved board this tab last read or wrote (persist.saveBoard). */
let boardRev = 0;

/**
 * Loads the saved board, settings and takes, then the run to offer for resuming. Never throws:
 * an unreadable record is reported in the save indicator and the studio goes on with the default
 * board, or without the offer (the record is not deleted). Settings fields that do not check
 * out are replaced by defaults and named; takes of shots no longer on the saved board are
 * deleted from storage.
 */
export async function restoreStudio(): Promise<void> {
  const st = useStudio.getState();
  if (!persist.storageAvailable()) {
    st.setSave('off', 'This browser gives the page no IndexedDB: nothing is saved across reloads.');
    return;
  }
  const problems: string[] = [];
  try {
    const [rec, saved, { takes, skipped }] = await Promise.all([
      persist.loadBoard(),
      persist.loadSettings(),
      persist.loadTakes(),
    ]);
    if (rec) st.replaceBoard({ board: rec.board, shotIds: rec.shotIds }, false);
    boardRev = rec?.rev ?? 0;
    if (saved) st.setSettings(saved.settings);
    if (saved?.problems.length)
      problems.push(`saved settings ${saved.problems.join(', ')} were unreadable and are back to their defaults`);
    const orphans = rec ? takes.filter((t) => !rec.shotIds.includes(t.meta.shotId)).map((t) => t.meta.id) : [];
    if (orphans.length) await persist.deleteTakes(orphans);
    const byShot: Record<string, TakeMeta[]> = {};
    for (const t of takes
      .filter((x) => !orphans.includes(x.meta.id))
      .sort((a, b) => a.meta.createdAt - b.meta.createdAt)) {
      putTake(t.meta.id, { pixels: t.pixels, frames: t.meta.frames, width: t.meta.width, height: t.meta.height });
      (byShot[t.meta.shotId] ??= []).push(t.meta);
    }
    const chosen: Record<string, string> = {};
    for (const [shotId, list] of Object.entries(byShot)) {
      const want = rec?.chosen[shotId];
      chosen[shotId] = list.some((t) => t.id === want) ? want! : list[list.length - 1].id;
    }
    st.setTakes(byShot, chosen);
    if (skipped.length) problems.unshift(`${skipped.length} saved take(s) could not be read: ${skipped[0]}`);
    st.setSave('saved', problems.length ? problems.join('; ') : null);
  } catch (e) {
    st.setSave('error', `Could not restore the saved studio: ${(e as Error).message}`);
  }
  const routingProblem = await restoreRouting();
  const runProblem = [routingProblem, await restoreInterruptedRun()].filter(Boolean).join('; ') || null;
  if (runProblem) {
    const { state, message } = useStudio.getState().save;
    st.setSave(state, message ? `${message}; ${runProblem}` : runProblem);
  }
}

/**
 * Saves the board (and chosen takes) and settings shortly after every change, and retries takes
 * that could not be saved (a full disk): the indicator says "Saved" only when nothing is left
 * unsaved, so a storage error stays visible until it is resolved. A board changed in another
 * tab since this one loaded it is not overwritten: the indicator says so until this tab is
 * reloaded. Returns a stop function.
 */
export function startAutosave(): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = async (): Promise<void> => {
    timer = null;
    const s = useStudio.getState();
    if (s.save.state === 'off') return;
    try {
      boardRev = await persist.saveBoard({ board: s.board, shotIds: s.shotIds }, s.chosen, boardRev);
      await persist.saveSettings(s.settings);
      await saveUnsavedTakes();
      if (!timer)
        useStudio.getState().setSave('saved', s.save.state === 'error' ? null : useStudio.getState().save.message);
    } catch (e) {
      useStudio.getState().setSave('error', saveProblem(e));
    }
  };
  const unsub = useStudio.subscribe((s, prev) => {
    if (
      s.board === prev.board &&
      s.shotIds === prev.shotIds &&
      s.chosen === prev.chosen &&
      s.settings === prev.settings &&
      s.takes === prev.takes
    )
      return;
    if (s.save.state === 'off') return;
    if (s.save.state !== 'pending' && s.save.state !== 'error') s.setSave('pending', s.save.message);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void flush(), AUTOSAVE_MS);
  });
  return () => {
    unsub();
    if (timer) clearTimeout(timer);
  };
}

function saveProblem(e: unknown): string {
  if (e instanceof persist.ConflictError) {
    return 'Not saved: the storyboard was changed in another tab since this tab loaded it. Reload to see that version (use Export JSON first to keep this one).';
  }
  const quota =
    (e as Error)?.name === 'QuotaExceededError'
      ? " (the browser's storage for this site is full: delete takes you do not need)"
      : '';
  return `Autosave failed: ${(e as Error).message}${quota}`;
}

/**
 * Replaces the board with the storyboard in `text` (undoable). On bad input, sets one line in
 * `importError` and keeps the board. Returns whether it was imported.
 */
export function importStoryboard(text: string, source = 'the file'): boolean {
  const st = useStudio.getState();
  try {
    const board = parseStoryboardJson(text);
    st.replaceBoard(withIds(board), true);
    return true;
  } catch (e) {
    const why = e instanceof StoryboardError ? e.message : String(e);
    st.setImportError(`Could not import ${source}: ${firstLine(why)} — your storyboard is unchanged.`);
    return false;
  }
}

/**
 * Imports a storyboard file the person picked: a file over MAX_STORYBOARD_BYTES is refused from
 * its size, before it is read (a video picked by mistake would otherwise be read whole).
 */
export async function importStoryboardFile(file: Blob & { name: string }): Promise<boolean> {
  const source = `“${file.name}”`;
  if (file.size > MAX_STORYBOARD_BYTES) {
    const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
    useStudio
      .getState()
      .setImportError(
        `Could not import ${source}: it is ${mib(file.size)}, more than the ${mib(MAX_STORYBOARD_BYTES)} a storyboard may be — your storyboard is unchanged.`,
      );
    return false;
  }
  let text: string;
  try {
    text = await file.text();
  } catch (e) {
    useStudio
      .getState()
      .setImportError(
        `Could not import ${source}: it could not be read (${firstLine(String(e))}) — your storyboard is unchanged.`,
      );
    return false;
  }
  return importStoryboard(text, source);
}

/** The board as storyboard JSON (the schema of src/model/storyboard.ts), pretty-printed. */
export function exportStoryboard(): string {
  return `${JSON.stringify(useStudio.getState().board, null, 2)}\n`;
}

/** Reads public/storyboards/index.json. Absent or unreadable: `samples.state = 'missing'`. */
export async function loadSamples(base = import.meta.env.BASE_URL): Promise<void> {
  const st = useStudio.getState();
  const indexUrl = new URL(`${base}storyboards/index.json`, location.href);
  try {
    const entries = parseSampleIndex(await fetchJson(indexUrl, 'public/storyboards/index.json'), indexUrl.href);
    st.setSamples({ state: entries.length ? 'ready' : 'missing', entries });
  } catch {
    st.setSamples({ state: 'missing', entries: [] });
  }
}

/** Loads a sample storyboard (undoable); failures go to `importError`. */
export async function loadSample(entry: SampleEntry): Promise<boolean> {
  try {
    const value = await fetchJson(entry.url, 'the file');
    return importStoryboard(JSON.stringify(value), `the sample “${entry.name}”`);
  } catch (e) {
    useStudio
      .getState()
      .setImportError(
        `Could not load the sample “${entry.name}”: ${(e as Error).message} — your storyboard is unchanged.`,
      );
    return false;
  }
}

/**
 * The entries of a storyboard index: a list (or `{storyboards|samples|items: list}`) of
 * `{name|title, file|path|url, description?}`; file paths are relative to the index.
 */
export function parseSampleIndex(value: unknown, indexUrl: string): SampleEntry[] {
  const v = value as Record<string, unknown> | unknown[];
  const list = Array.isArray(v) ? v : (v?.storyboards ?? v?.samples ?? v?.items);
  if (!Array.isArray(list)) return [];
  const out: SampleEntry[] = [];
  for (const raw of list) {
    if (typeof raw === 'string') {
      out.push({
        name: raw.replace(/\.json$/, '').replace(/[-_]/g, ' '),
        url: new URL(raw, indexUrl).href,
        description: '',
      });
      continue;
    }
    const e = (raw ?? {}) as Record<string, unknown>;
    const file = e.file ?? e.path ?? e.url;
    if (typeof file !== 'string') continue;
    const name =
      typeof e.name === 'string' ? e.name : typeof e.title === 'string' ? e.title : file.replace(/\.json$/, '');
    out.push({
      name,
      url: new URL(file, indexUrl).href,
      description: typeof e.description === 'string' ? e.description : '',
    });
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}
