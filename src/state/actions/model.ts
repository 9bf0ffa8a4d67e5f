/**
 * Model actions: read public/models/index.json, and load the chosen model in the worker
 * (download progress, cached for the next visit) whenever the engine is ready; once loaded, its
 * attention defaults (config.json) go into the panel's settings, save those set by hand.
 */
import type { ModelEntry } from '../../model/api.ts';
import { WorkerError } from '../../worker/client.ts';
import { useStudio } from '../store.ts';
import { engineClient, onEngineLost, onEngineReady } from './engine.ts';
import { localModelEntries } from '../local-models.ts';
import { fetchJson } from './fetch-json.ts';

/** Reads the model index. Absent or unreadable: `model.index = 'missing'` with the reason. */
export async function loadModelIndex(base = import.meta.env.BASE_URL): Promise<void> {
  const st = useStudio.getState();
  const url = new URL(`${base}models/index.json`, location.href);
  const locals = localModelEntries(); // models added from disk are listed after the shipped ones
  try {
    const entries = parseModelIndex(await fetchJson(url, 'public/models/index.json'));
    if (!entries.length) throw new Error('public/models/index.json lists no models');
    st.setModel({
      index: 'ready',
      indexError: null,
      entries: [...entries, ...locals.filter((l) => !entries.some((e) => e.name === l.name))],
    });
  } catch (e) {
    st.setModel({ index: locals.length ? 'ready' : 'missing', indexError: (e as Error).message, entries: locals });
  }
}

/** Index entries: a list, or `{models: list}`, of ModelEntry-like objects with a name and path. */
export function parseModelIndex(value: unknown): ModelEntry[] {
  const v = value as { models?: unknown } | unknown[];
  const list = Array.isArray(v) ? v : v?.models;
  if (!Array.isArray(list)) return [];
  return list
    .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && typeof e.name === 'string')
    .map((e) => ({
      name: e.name as string,
      path: typeof e.path === 'string' ? e.path : `models/${e.name as string}/`,
      description: typeof e.description === 'string' ? e.description : '',
      params: Number(e.params) || 0,
      bytes: Number(e.bytes) || 0,
      default: e.default === true,
    }));
}

/** The entry the settings name, else the index's default, else its first. */
export function selectedEntry(): ModelEntry | null {
  const { model, settings } = useStudio.getState();
  return (
    model.entries.find((e) => e.name === settings.model) ??
    model.entries.find((e) => e.default) ??
    model.entries[0] ??
    null
  );
}

/** Absolute URL of a model folder (`path` is relative to public/), ending in '/'. */
export function modelUrl(entry: ModelEntry, base = import.meta.env.BASE_URL): string {
  const path = entry.path.endsWith('/') ? entry.path : `${entry.path}/`;
  const rel = path.replace(/^\.?\//, '').replace(/^public\//, '');
  return new URL(/^[a-z]+:/i.test(rel) ? rel : `${base}${rel}`, location.href).href;
}

let loading: Promise<void> | null = null;

/** Loads the selected model in the worker unless it is loaded or loading already. Never throws. */
export function ensureModel(): Promise<void> {
  const entry = selectedEntry();
  const st = useStudio.getState();
  const client = engineClient();
  if (!entry || !client) return Promise.resolve();
  if (st.model.name === entry.name && (st.model.phase === 'ready' || st.model.phase === 'loading') && loading)
    return loading;
  if (st.model.name === entry.name && st.model.phase === 'ready') return Promise.resolve();
  st.setModel({ phase: 'loading', name: entry.name, progress: null, error: null });
  const p = client
    .loadModel({ name: entry.name, url: modelUrl(entry) }, (progress) => {
      if (useStudio.getState().model.name === entry.name) useStudio.getState().setModel({ progress });
    })
    .then((info) => {
      if (useStudio.getState().model.name !== entry.name) return;
      useStudio.getState().setModel({ phase: 'ready', info, progress: null });
      useStudio.getState().applyModelDefaults(info.attention);
    })
    .catch((e: unknown) => {
      if (useStudio.getState().model.name !== entry.name) return;
      const error = e instanceof WorkerError ? e.toInfo() : { code: 'internal' as const, message: String(e) };
      useStudio.getState().setModel({ phase: 'error', error, progress: null });
    })
    .finally(() => {
      if (loading === p) loading = null;
    });
  loading = p;
  return p;
}

/** Picks another model and loads it; its attention defaults replace what was set by hand for the previous one. */
export function chooseModel(name: string): Promise<void> {
  useStudio.getState().selectModel(name);
  return ensureModel();
}

/** Wires model loading to the engine: load when ready, forget the model when the device is lost. */
export function startModelLoading(): void {
  onEngineReady(() => void ensureModel());
  onEngineLost(() => {
    loading = null;
    useStudio.getState().setModel({ phase: 'none', progress: null });
  });
  void loadModelIndex().then(() => ensureModel());
}
