/**
 * Fetches the files of a model folder with progress, checks each against the folder's
 * manifest.json (size and sha256), and keeps them in the Cache API so a reload loads the model
 * without downloading it again. Runs in the worker (the Cache API and fetch exist there).
 *
 * manifest.json: {"format": "moc-dit", "formatVersion": 1, "files": {name: {"bytes", "sha256"}}}
 *
 * Models load only from the studio's own origin (the Content-Security-Policy's connect-src says
 * the same; this check gives the one-line reason). Every file has a size cap
 * (src/model/limits.ts): the manifest's sizes are checked before anything is downloaded, and a
 * download stops as soon as it passes the size it should have.
 */
import { MAX_JSON_BYTES, modelFileCap, tooLargeMessage } from '../model/limits.ts';
import { WorkerError } from './errors.ts';
import type { ModelLoadProgress, ModelSource } from './protocol.ts';

/** Bump to drop every cached model file (e.g. when the manifest format changes). */
export const CACHE_NAME = 'moc-models-v1';

/**
 * Models added from a folder on disk live only in the Cache API, under this folder of the
 * studio's origin (nothing is served there): their manifest is read from the cache too, and a
 * file missing there is an error, not a download.
 */
export const LOCAL_MODELS_DIR = 'local-models/';

/** True for a model folder URL under LOCAL_MODELS_DIR. */
export function isLocalModelUrl(url: string): boolean {
  try {
    return new URL(url, 'http://x/').pathname.includes(`/${LOCAL_MODELS_DIR}`);
  } catch {
    return false;
  }
}

export interface ManifestFile {
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: string;
  formatVersion: number;
  files: Record<string, ManifestFile>;
}

/** Fetched and checked file contents by name (manifest.json, config.json, vocab.json, model.safetensors, …). */
export type ModelFiles = Map<string, ArrayBuffer>;

/**
 * Fetches manifest.json and every file it lists, from the cache when possible.
 * @throws WorkerError `model-missing` (a file cannot be fetched) | `model-invalid` (bad manifest, size or checksum).
 */
export async function fetchModelFiles(
  source: ModelSource,
  onProgress?: (p: ModelLoadProgress) => void,
): Promise<ModelFiles> {
  checkOrigin(source);
  const local = isLocalModelUrl(source.url);
  const cache = await openCache();
  const gone = (file: string): WorkerError =>
    new WorkerError(
      'model-missing',
      `model "${source.name}": ${file} is no longer in this browser's storage (was it cleared?); add the model folder again`,
    );
  const manifestUrl = new URL('manifest.json', source.url).href;
  let manifestBytes: ArrayBuffer;
  if (local) {
    const hit = await cache?.match(manifestUrl).catch(() => undefined);
    if (!hit) throw gone('manifest.json');
    manifestBytes = await hit.arrayBuffer();
    if (manifestBytes.byteLength > MAX_JSON_BYTES)
      throw new WorkerError(
        'model-invalid',
        `model "${source.name}": ${tooLargeMessage('manifest.json', manifestBytes.byteLength, MAX_JSON_BYTES)}`,
      );
  } else {
    manifestBytes = await download(manifestUrl, source.name, 'manifest.json', MAX_JSON_BYTES);
  }
  const manifest = parseManifest(parseJsonBytes(manifestBytes, source.name), source.name);
  const names = Object.keys(manifest.files);
  for (const file of names) {
    const cap = modelFileCap(file);
    if (manifest.files[file].bytes > cap)
      throw new WorkerError(
        'model-invalid',
        `model "${source.name}": ${tooLargeMessage(`${file} (by manifest.json)`, manifest.files[file].bytes, cap)}`,
      );
  }
  const allTotal = names.reduce((n, f) => n + manifest.files[f].bytes, 0);
  const out: ModelFiles = new Map([['manifest.json', manifestBytes]]);
  let allLoaded = 0;
  for (const file of names) {
    const want = manifest.files[file];
    const url = new URL(file, source.url).href;
    const report = (loaded: number, fromCache: boolean): void =>
      onProgress?.({
        stage: 'download',
        file,
        loaded,
        total: want.bytes,
        allLoaded: allLoaded + loaded,
        allTotal,
        fromCache,
      });

    let buf = await fromCache(cache, url, want);
    const cached = buf !== null;
    if (buf === null) {
      if (local) throw gone(file);
      buf = await download(url, source.name, file, want.bytes, (n) => report(n, false));
      await check(buf, want, source.name, file);
      await cache
        ?.put(url, new Response(buf.slice(0), { headers: { 'content-type': 'application/octet-stream' } }))
        .catch(() => undefined);
    }
    report(buf.byteLength, cached);
    allLoaded += buf.byteLength;
    out.set(file, buf);
  }
  return out;
}

/**
 * Refuses a model URL on another origin (where there is a `location`: browser, worker).
 * @throws WorkerError `model-invalid`.
 */
export function checkOrigin(
  source: ModelSource,
  here: { href: string; origin: string } | undefined = (globalThis as { location?: Location }).location,
): void {
  if (!here) return;
  let origin: string;
  try {
    origin = new URL(source.url, here.href).origin;
  } catch {
    throw new WorkerError('model-invalid', `model "${source.name}": ${JSON.stringify(source.url)} is not a URL`);
  }
  if (origin !== here.origin) {
    throw new WorkerError(
      'model-invalid',
      `model "${source.name}": ${origin} is another site; models load only from the studio's own origin (${here.origin})`,
    );
  }
}

/** A parsed, checked manifest. @throws WorkerError `model-invalid`. */
export function parseManifest(value: unknown, name: string): Manifest {
  const m = value as Partial<Manifest> | null;
  const bad = (why: string): WorkerError => new WorkerError('model-invalid', `model "${name}": manifest.json ${why}`);
  if (!m || typeof m !== 'object') throw bad('is not an object');
  if (m.format !== 'moc-dit') throw bad(`has format ${JSON.stringify(m.format)}, expected "moc-dit"`);
  if (!m.files || typeof m.files !== 'object') throw bad('lists no files');
  for (const [file, f] of Object.entries(m.files)) {
    if (
      !f ||
      !Number.isInteger(f.bytes) ||
      f.bytes < 0 ||
      typeof f.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/.test(f.sha256)
    ) {
      throw bad(`has a bad entry for ${file} (needs integer "bytes" and a hex "sha256")`);
    }
  }
  return m as Manifest;
}

async function openCache(): Promise<Cache | null> {
  try {
    return typeof caches === 'undefined' ? null : await caches.open(CACHE_NAME);
  } catch {
    return null; // opaque origins and some private modes have no Cache API: download every time
  }
}

async function fromCache(cache: Cache | null, url: string, want: ManifestFile): Promise<ArrayBuffer | null> {
  const hit = await cache?.match(url).catch(() => undefined);
  if (!hit) return null;
  const buf = await hit.arrayBuffer();
  if (buf.byteLength === want.bytes && (await sha256(buf)) === want.sha256) return buf;
  await cache?.delete(url); // stale or damaged: fetch it again
  return null;
}

function parseJsonBytes(buf: ArrayBuffer, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(buf));
  } catch (e) {
    throw new WorkerError(
      'model-invalid',
      `model "${name}": manifest.json is not valid JSON (${(e as Error).message})`,
    );
  }
}

/**
 * GET with progress, of at most `maxBytes` (checked against Content-Length, then while streaming).
 * @throws WorkerError `model-missing` for a network error or a non-2xx status, `model-invalid` for too many bytes.
 */
async function download(
  url: string,
  name: string,
  file: string,
  maxBytes: number,
  onBytes?: (n: number) => void,
): Promise<ArrayBuffer> {
  const tooMany = (n: number): WorkerError =>
    new WorkerError(
      'model-invalid',
      `model "${name}": ${file} sends ${n} bytes or more, more than the ${maxBytes} it should have`,
    );
  let res: Response;
  try {
    res = await fetch(url, { cache: 'no-cache' });
  } catch (e) {
    throw new WorkerError('model-missing', `model "${name}": ${file} could not be fetched (${(e as Error).message})`);
  }
  if (!res.ok) throw new WorkerError('model-missing', `model "${name}": ${file} answered HTTP ${res.status} at ${url}`);
  const announced = Number(res.headers.get('content-length') ?? NaN);
  if (announced > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooMany(announced);
  }
  if (!res.body) {
    const buf = await res.arrayBuffer();
    if (buf.byteLength > maxBytes) throw tooMany(buf.byteLength);
    return buf;
  }
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.byteLength;
    if (n > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooMany(n);
    }
    onBytes?.(n);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}

/** Checks one file against its manifest entry (size, then sha256). @throws WorkerError `model-invalid`. */
export async function check(buf: ArrayBuffer, want: ManifestFile, name: string, file: string): Promise<void> {
  if (buf.byteLength !== want.bytes) {
    throw new WorkerError(
      'model-invalid',
      `model "${name}": ${file} has ${buf.byteLength} bytes, the manifest says ${want.bytes}`,
    );
  }
  const got = await sha256(buf);
  if (got !== want.sha256)
    throw new WorkerError(
      'model-invalid',
      `model "${name}": ${file} fails its sha256 check (got ${got.slice(0, 12)}…)`,
    );
}

export async function sha256(buf: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}
