/**
 * Your own model: a model folder picked from disk (or dropped) is checked as a download is —
 * manifest.json, every listed file's size cap, size and sha256 (the worker's own functions) —
 * then stored in the Cache API under local-models/NAME/, listed beside the shipped models, and
 * loaded: the worker's loader checks config.json, vocab.json and the weights as for any model,
 * and a folder that fails there is removed again. Nothing is stored for a folder that fails.
 */
import type { ModelEntry } from '../../model/api.ts';
import { MAX_JSON_BYTES, modelFileCap, tooLargeMessage } from '../../model/limits.ts';
import { CACHE_NAME, checkModelFile, parseManifest } from '../../worker/client.ts';
import { LOCAL_PATH, isLocalEntry, localModelEntries, localModelName, saveLocalModelEntries } from '../local-models.ts';
import { useStudio } from '../store.ts';
import { chooseModel, modelUrl } from './model.ts';

/** Files every model folder must list in its manifest. */
const REQUIRED = ['config.json', 'vocab.json', 'model.safetensors'];

/** A picked folder: its name and its files by name (top level only). */
export interface PickedFolder {
  folder: string;
  files: ReadonlyMap<string, Blob>;
}

/** The folder of `<input webkitdirectory>` files (their webkitRelativePath is folder/name). */
export function folderFromFileList(list: ArrayLike<File>): PickedFolder | null {
  const files = new Map<string, Blob>();
  let folder = '';
  for (const f of Array.from(list)) {
    const parts = (f.webkitRelativePath || f.name).split('/');
    folder ||= parts.length > 1 ? parts[0] : '';
    if (parts.length <= 2) files.set(parts[parts.length - 1], f);
  }
  return files.size ? { folder: folder || 'my-model', files } : null;
}

/** Adds a model folder; returns null, or a one-line reason nothing was added. */
export async function addLocalModel(picked: PickedFolder): Promise<string | null> {
  const st = useStudio.getState();
  const locals = localModelEntries();
  const shipped = st.model.entries.filter((e) => !isLocalEntry(e));
  const name = localModelName(
    picked.folder,
    [...shipped, ...locals].map((e) => e.name),
  );
  const fail = (why: string): string => `Could not add the folder “${picked.folder}”: ${why}`;
  const manifestBlob = picked.files.get('manifest.json');
  if (!manifestBlob) return fail('it has no manifest.json (a model folder is what python3 -m train.export writes)');
  if (manifestBlob.size > MAX_JSON_BYTES)
    return fail(tooLargeMessage('manifest.json', manifestBlob.size, MAX_JSON_BYTES));
  const stored: Array<[string, ArrayBuffer]> = [];
  try {
    const manifestBytes = await manifestBlob.arrayBuffer();
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(manifestBytes));
    } catch (e) {
      return fail(`manifest.json is not valid JSON (${(e as Error).message})`);
    }
    const manifest = parseManifest(json, name);
    const missing = REQUIRED.filter((f) => !manifest.files[f]);
    if (missing.length) return fail(`manifest.json does not list ${missing.join(', ')}`);
    stored.push(['manifest.json', manifestBytes]);
    for (const [file, want] of Object.entries(manifest.files)) {
      if (file.includes('/') || file.startsWith('.'))
        return fail(`manifest.json lists “${file}”, not a file of the folder`);
      const blob = picked.files.get(file);
      if (!blob) return fail(`${file} is listed in manifest.json but is not in the folder`);
      const cap = modelFileCap(file);
      if (blob.size > cap) return fail(tooLargeMessage(file, blob.size, cap));
      const buf = await blob.arrayBuffer();
      await checkModelFile(buf, want, name, file);
      stored.push([file, buf]);
    }
  } catch (e) {
    return fail((e as Error).message.replace(/^model "[^"]*": /, ''));
  }
  const entry: ModelEntry = {
    name,
    path: `${LOCAL_PATH}${encodeURIComponent(name)}/`,
    description: `Your model, from the folder “${picked.folder}” (added ${new Date().toLocaleDateString()}; kept in this browser)`,
    params: 0,
    bytes: stored.reduce((n, [, b]) => n + b.byteLength, 0),
  };
  try {
    const cache = await caches.open(CACHE_NAME);
    const url = modelUrl(entry);
    for (const [file, buf] of stored)
      await cache.put(
        new URL(file, url).href,
        new Response(buf, { headers: { 'content-type': 'application/octet-stream' } }),
      );
    saveLocalModelEntries([...locals, entry]);
  } catch (e) {
    await dropFiles(entry);
    return fail(`this browser would not store it (${(e as Error).message})`);
  }
  showEntries();
  const before = st.model.name ?? st.settings.model;
  await chooseModel(name);
  const after = useStudio.getState().model;
  if (after.name === name && after.phase === 'error') {
    const why = after.error?.message.replace(/^model "[^"]*": /, '') ?? 'it did not load';
    await removeLocalModel(name, before);
    return fail(why);
  }
  return null;
}

/** Removes a model added from disk (its stored files too); the selection moves to `then` or the default model. */
export async function removeLocalModel(name: string, then: string | null = null): Promise<void> {
  const entry = localModelEntries().find((e) => e.name === name);
  if (!entry) return;
  saveLocalModelEntries(localModelEntries().filter((e) => e.name !== name));
  await dropFiles(entry);
  showEntries();
  const st = useStudio.getState();
  if ((st.model.name ?? st.settings.model) === name) {
    const next =
      st.model.entries.find((e) => e.name === then) ?? st.model.entries.find((e) => e.default) ?? st.model.entries[0];
    if (next) await chooseModel(next.name);
  }
}

/** Deletes every cached file under the entry's folder. */
async function dropFiles(entry: ModelEntry): Promise<void> {
  try {
    const cache = await caches.open(CACHE_NAME);
    const prefix = modelUrl(entry);
    for (const req of await cache.keys()) if (req.url.startsWith(prefix)) await cache.delete(req);
  } catch {
    // nothing stored, or no Cache API: nothing to delete
  }
}

/** The model list: the shipped entries, then the ones added from disk. */
function showEntries(): void {
  const st = useStudio.getState();
  const entries = [...st.model.entries.filter((e) => !isLocalEntry(e)), ...localModelEntries()];
  st.setModel({ entries, ...(entries.length ? { index: 'ready' as const } : {}) });
}
