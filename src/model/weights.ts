/**
 * Loading a model folder (train/export.py writes it): config.json, vocab.json, model.safetensors
 * and manifest.json ({"files": {name: {"bytes", "sha256"}}}).
 *
 * Everything a file can get wrong is refused with one line naming the file and the problem: a
 * size or sha256 that differs from the manifest, a truncated safetensors file or one whose header
 * lies about sizes or offsets (parseSafetensors), a dtype other than F16/F32, a missing,
 * unexpected or misshapen tensor, a vocabulary that is not the config's size. Host-independent:
 * the caller supplies `read(name)` (node:fs in the CLI, fetch in the browser).
 */
import { z } from './zod.ts';
import { expectedWeights, parseModelConfig, type ModelConfig } from './config.ts';
import { MAX_JSON_BYTES, checkSize, modelFileCap } from './limits.ts';
import { InputError } from './errors.ts';
import { parseSafetensors } from './safetensors.ts';
import { Tokenizer } from './tokenizer.ts';

export const MODEL_FILES = ['config.json', 'vocab.json', 'model.safetensors'] as const;

/** One weight on the host: f32 values, and the raw f16 bits when the file stored F16. */
export interface HostWeight {
  shape: number[];
  data: Float32Array;
  f16: Uint16Array | null;
}

export interface LoadedModel {
  config: ModelConfig;
  tokenizer: Tokenizer;
  weights: Map<string, HostWeight>;
  /** Bytes of the four files. */
  bytes: number;
}

/** Reads one file of the model folder by name. */
export type ReadFile = (name: string) => Promise<Uint8Array>;

const manifestSchema = z.object({
  files: z.record(z.string(), z.object({ bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});

let halfTable: Float32Array | null = null;

/** f16 bits → f32 values (exact: every f16 is an f32). */
export function halfToFloat(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      halfTable[h] =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfTable[bits[i]];
  return out;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new InputError(`${source}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

/**
 * The largest weight magnitude accepted. Trained weights stay below 10 (moc-base: 2.8, the test
 * fixture: 4.0); a file with larger ones is damaged or hostile, and its activations would overflow
 * float32 into an all-black video with no error.
 */
export const MAX_WEIGHT_ABS = 1e4;

/** @throws InputError at the first non-finite value or one beyond ±MAX_WEIGHT_ABS. */
function checkValues(source: string, name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(Math.abs(v) <= MAX_WEIGHT_ABS)) {
      const what = Number.isFinite(v)
        ? `${v.toPrecision(3)}, beyond ±${MAX_WEIGHT_ABS} (trained weights stay below 10)`
        : `${v} (not finite)`;
      throw new InputError(`${source}: tensor '${name}' has the value ${what} at index ${i}`);
    }
  }
}

/**
 * Checks a safetensors file's tensors against the config: every expected name present with its
 * shape, dtype F16 or F32, nothing extra, every value finite and within ±MAX_WEIGHT_ABS.
 * Returns the host weights (f32, plus f16 bits).
 * @throws InputError naming the first offending tensor.
 */
export function checkWeights(
  bytes: Uint8Array,
  config: ModelConfig,
  source = 'model.safetensors',
): Map<string, HostWeight> {
  const file = parseSafetensors(bytes, source);
  const want = expectedWeights(config);
  const out = new Map<string, HostWeight>();
  for (const [name, shape] of want) {
    const t = file.tensors.get(name);
    if (!t)
      throw new InputError(`${source}: tensor '${name}' is missing (the config's model needs ${want.size} tensors)`);
    if (t.dtype !== 'F16' && t.dtype !== 'F32')
      throw new InputError(`${source}: tensor '${name}' has dtype ${t.dtype}; weights must be F16 or F32`);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new InputError(
        `${source}: tensor '${name}' has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`,
      );
    }
    const f16 = t.dtype === 'F16' ? (t.data as Uint16Array) : null;
    const data = f16 ? halfToFloat(f16) : (t.data as Float32Array);
    checkValues(source, name, data);
    out.set(name, { shape, f16, data });
  }
  for (const name of file.tensors.keys()) {
    if (!want.has(name)) throw new InputError(`${source}: tensor '${name}' is not a weight of this config's model`);
  }
  return out;
}

/**
 * Loads and validates a model folder. Files over their cap (src/model/limits.ts) are refused
 * from the manifest's sizes, before they are read.
 * @param read reads a file of the folder by name. @param source names the folder in messages.
 * @throws InputError for any file that is missing, corrupt or inconsistent (one line).
 */
export async function loadModel(read: ReadFile, source = 'model'): Promise<LoadedModel> {
  const get = async (name: string): Promise<Uint8Array> => {
    try {
      return await read(name);
    } catch (e) {
      throw new InputError(`${source}/${name}: cannot read (${(e as Error).message.split('\n')[0]})`);
    }
  };
  const manifestBytes = await get('manifest.json');
  checkSize(`${source}/manifest.json`, manifestBytes.length, MAX_JSON_BYTES);
  const m = manifestSchema.safeParse(parseJson(manifestBytes, `${source}/manifest.json`));
  if (!m.success)
    throw new InputError(`${source}/manifest.json: ${m.error.issues[0].path.join('.')}: ${m.error.issues[0].message}`);
  const files = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const name of MODEL_FILES) {
    const entry = m.data.files[name];
    if (!entry) throw new InputError(`${source}/manifest.json: lists no ${name}`);
    checkSize(`${source}/${name} (by manifest.json)`, entry.bytes, modelFileCap(name)); // before reading it
    const data = await get(name);
    if (data.length !== entry.bytes)
      throw new InputError(
        `${source}/${name}: ${data.length} bytes, manifest.json says ${entry.bytes} (truncated or replaced?)`,
      );
    const sha = await sha256Hex(data);
    if (sha !== entry.sha256)
      throw new InputError(
        `${source}/${name}: sha256 ${sha.slice(0, 12)}… differs from manifest.json's ${entry.sha256.slice(0, 12)}… (corrupt or replaced)`,
      );
    files.set(name, data);
    bytes += data.length;
  }
  const config = parseModelConfig(
    parseJson(files.get('config.json')!, `${source}/config.json`),
    `${source}/config.json`,
  );
  const tokenizer = Tokenizer.fromJson(
    parseJson(files.get('vocab.json')!, `${source}/vocab.json`),
    `model '${config.name}'`,
  );
  if (tokenizer.size !== config.vocabSize) {
    throw new InputError(
      `${source}/vocab.json: ${tokenizer.size} words, config.json's vocab_size is ${config.vocabSize}`,
    );
  }
  const weights = checkWeights(files.get('model.safetensors')!, config, `${source}/model.safetensors`);
  return { config, tokenizer, weights, bytes };
}

/** A ReadFile over HTTP (browser, worker): `${base}/${name}`. */
export function fetchFiles(base: string, init?: RequestInit): ReadFile {
  return async (name) => {
    const res = await fetch(`${base.replace(/\/$/, '')}/${name}`, init);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    return new Uint8Array(await res.arrayBuffer());
  };
}
