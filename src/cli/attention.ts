/**
 * `moc attention --in IN.safetensors --out OUT.safetensors [--cpu]`: MoC attention on an
 * exchange file (MOC.md §4), so numpy or PyTorch can check the engine.
 *
 * In: q, k, v F32 [H, N, D]; chunk_start, chunk_end, chunk_shot, chunk_kind I32 [C];
 * __metadata__ top_k (integer ≥ 0), causal (true|false), mode (moc|dense).
 * Optional (contract v2, MOC.md §3b): q_route, k_route F32 [H, N, D], both or neither: routing
 * scores with them (descriptors are chunk means of k_route), attention still uses q, k, v;
 * __metadata__ causal_text (true|false, default false).
 * Out: out F32 [H, N, D]; routed I32 [H, N, top_k]; __metadata__ sparsity (and the settings and
 * the backend used, for the record).
 *
 * Default backend: the GPU (Dawn; SwiftShader where there is no GPU) computes the descriptors, the
 * routing and the fused sparse attention; `--cpu` runs the float64 reference
 * (src/model/moc-reference.ts) for everything.
 * Every refusal of the input is an InputError: one line naming the tensor or key and the problem.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine.ts';
import { UnsupportedError } from '../engine/errors.ts';
import { nodeGpu } from '../engine/host-node.ts';
import { chunkMean } from '../engine/kernels/chunk-mean.ts';
import { mocAttention } from '../engine/kernels/moc-attention.ts';
import { MAX_TOP_K, mocRoute } from '../engine/kernels/moc-route.ts';
import type { Tensor } from '../engine/tensor.ts';
import { MAX_EXCHANGE_BYTES } from '../model/limits.ts';
import { LayoutError, tableFromColumns, validateChunks, type ChunkTable } from '../model/layout.ts';
import {
  chunkDescriptors,
  mocAttentionReference,
  routeReference,
  sparsityOf,
  type MocConfig,
  type MocDims,
} from '../model/moc-reference.ts';
import { InputError, oneLine } from '../model/errors.ts';
import { clip } from '../model/tokenizer.ts';
import { parseSafetensors, serializeSafetensors, type SafeFile, type SafeTensor } from '../model/safetensors.ts';
import { readFileCapped } from './files.ts';
import { UsageError } from './main.ts';

const USAGE = 'usage: moc attention --in IN.safetensors --out OUT.safetensors [--cpu]';

export interface AttentionInput {
  q: Float32Array; // [H, N, D]
  k: Float32Array; // [H, N, D]
  v: Float32Array; // [H, N, D]
  dims: MocDims;
  table: ChunkTable;
  cfg: MocConfig;
  /** Routing's own queries and keys (q_route, k_route), when the file has them. */
  route?: { q: Float32Array; k: Float32Array };
}

export interface AttentionOutput {
  out: Float32Array; // [H, N, D]
  routed: Int32Array; // [H, N, K]
  sparsity: number;
  backend: string;
}

function tensor(file: SafeFile, src: string, name: string, dtype: 'F32' | 'I32'): SafeTensor {
  const t = file.tensors.get(name);
  if (!t) throw new InputError(`${src}: missing tensor '${name}'`);
  if (t.dtype !== dtype) throw new InputError(`${src}: tensor '${name}' is ${t.dtype}, expected ${dtype}`);
  return t;
}

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

function checkFinite(src: string, name: string, x: Float32Array, [, N, D]: number[]): void {
  for (let j = 0; j < x.length; j++) {
    if (!Number.isFinite(x[j])) {
      const idx = [Math.floor(j / (N * D)), Math.floor(j / D) % N, j % D];
      throw new InputError(`${src}: tensor '${name}' has a non-finite value (${x[j]}) at ${shapeText(idx)}`);
    }
  }
}

function metaValue(file: SafeFile, src: string, key: string, allowed: string): string {
  const v = file.metadata[key];
  if (v === undefined) throw new InputError(`${src}: __metadata__ lacks '${key}' (${allowed})`);
  return v;
}

/**
 * Validates an exchange file and returns its contents.
 * @throws InputError naming the first problem: a missing tensor, a wrong dtype or shape, a
 *   non-finite value, a bad chunk table (overlap, gap, beyond N, …) or bad metadata.
 */
export function readAttentionInput(file: SafeFile, src: string): AttentionInput {
  const q = tensor(file, src, 'q', 'F32');
  if (q.shape.length !== 3 || q.shape.some((d) => d < 1)) {
    throw new InputError(`${src}: tensor 'q' has shape ${shapeText(q.shape)}, expected [H, N, D] with every dim ≥ 1`);
  }
  const [H, N, D] = q.shape;
  const k = tensor(file, src, 'k', 'F32');
  const v = tensor(file, src, 'v', 'F32');
  for (const [name, t] of [
    ['k', k],
    ['v', v],
  ] as const) {
    if (shapeText(t.shape) !== shapeText(q.shape))
      throw new InputError(
        `${src}: tensor '${name}' has shape ${shapeText(t.shape)}, expected ${shapeText(q.shape)} like q`,
      );
  }
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const)
    checkFinite(src, name, t.data as Float32Array, q.shape);
  const route = readRouteView(file, src, q.shape);
  const cols = (['chunk_start', 'chunk_end', 'chunk_shot', 'chunk_kind'] as const).map((name) => {
    const t = tensor(file, src, name, 'I32');
    if (t.shape.length !== 1)
      throw new InputError(`${src}: tensor '${name}' has shape ${shapeText(t.shape)}, expected [C]`);
    return t;
  });
  const C = cols[0].shape[0];
  for (const t of cols) {
    if (t.shape[0] !== C)
      throw new InputError(`${src}: chunk tensors differ in length (chunk_start has ${C}, another has ${t.shape[0]})`);
  }
  let table: ChunkTable;
  try {
    const [start, end, shot, kind] = cols.map((t) => t.data as Int32Array);
    table = tableFromColumns(start, end, shot, kind);
    validateChunks(table, N);
  } catch (e) {
    if (e instanceof LayoutError) throw new InputError(`${src}: chunk table: ${e.message}`);
    throw e;
  }
  const topKText = metaValue(file, src, 'top_k', 'an integer ≥ 0');
  if (!/^-?\d+$/.test(topKText.trim()))
    throw new InputError(`${src}: __metadata__ top_k '${clip(topKText, 20)}' is not an integer`);
  const topK = Number(topKText);
  if (topK < 0) throw new InputError(`${src}: __metadata__ top_k ${topK} must be ≥ 0`);
  if (!Number.isSafeInteger(topK) || topK > C)
    throw new InputError(
      `${src}: __metadata__ top_k ${clip(topKText, 20)} is more than the ${C} chunks (at most ${C})`,
    );
  const outBytes = H * N * (D + topK) * 4;
  if (outBytes > MAX_EXCHANGE_BYTES)
    throw new InputError(
      `${src}: the output (out and routed, H·N·(D + top_k)·4 bytes) would be ${(outBytes / 2 ** 20).toFixed(1)} MiB, more than the limit of ${MAX_EXCHANGE_BYTES / 2 ** 20} MiB`,
    );
  const causal = metaValue(file, src, 'causal', 'true or false');
  if (causal !== 'true' && causal !== 'false')
    throw new InputError(`${src}: __metadata__ causal '${causal}' must be 'true' or 'false'`);
  const mode = metaValue(file, src, 'mode', 'moc or dense');
  if (mode !== 'moc' && mode !== 'dense')
    throw new InputError(`${src}: __metadata__ mode '${mode}' must be 'moc' or 'dense'`);
  const causalText = file.metadata.causal_text ?? 'false';
  if (causalText !== 'true' && causalText !== 'false')
    throw new InputError(`${src}: __metadata__ causal_text '${causalText}' must be 'true' or 'false'`);
  return {
    q: q.data as Float32Array,
    k: k.data as Float32Array,
    v: v.data as Float32Array,
    dims: { H, N, D },
    table,
    cfg: { topK, causal: causal === 'true', mode, causalText: causalText === 'true' },
    ...(route && { route }),
  };
}

/** The optional q_route / k_route pair (MOC.md §3b): both or neither, F32, shaped like q, finite. */
function readRouteView(file: SafeFile, src: string, shape: number[]): { q: Float32Array; k: Float32Array } | undefined {
  const has = (name: string): boolean => file.tensors.has(name);
  if (!has('q_route') && !has('k_route')) return undefined;
  const [given, lacking] = has('q_route') ? ['q_route', 'k_route'] : ['k_route', 'q_route'];
  if (!has(lacking))
    throw new InputError(`${src}: tensor '${given}' without '${lacking}' (a routing view needs both or neither)`);
  const [qr, kr] = (['q_route', 'k_route'] as const).map((name) => {
    const t = tensor(file, src, name, 'F32');
    if (shapeText(t.shape) !== shapeText(shape))
      throw new InputError(
        `${src}: tensor '${name}' has shape ${shapeText(t.shape)}, expected ${shapeText(shape)} like q`,
      );
    checkFinite(src, name, t.data as Float32Array, shape);
    return t.data as Float32Array;
  });
  return { q: qr, k: kr };
}

/** The queries and keys routing scores with: the routing view when given, else q and k. */
function routeInputs(x: AttentionInput): { q: Float32Array; k: Float32Array } {
  return x.route ?? { q: x.q, k: x.k };
}

/** The float64 reference for everything. */
export function computeCpu(x: AttentionInput): AttentionOutput {
  const r = routeInputs(x);
  const desc = chunkDescriptors(r.k, x.dims, x.table);
  const routed = routeReference(r.q, desc, x.dims, x.table, x.cfg);
  const ct = x.cfg.causalText ?? false;
  const out = mocAttentionReference(x.q, x.k, x.v, x.dims, x.table, routed, x.cfg.topK, x.cfg.mode, ct);
  return {
    out,
    routed,
    sparsity: sparsityOf(routed, x.cfg.topK, x.dims, x.table, x.cfg.mode, ct).sparsity,
    backend: 'cpu',
  };
}

/**
 * Everything on the GPU: descriptors (chunk-mean), routing (moc-route) and the fused sparse
 * attention (moc-attention; flash attention in dense mode). Falls back to the CPU reference, with
 * a note on stderr, for routing when top_k > MAX_TOP_K and for attention when the kernel cannot
 * run the shape (UnsupportedError: e.g. a head dim it has no pipeline for).
 * @throws NoAdapterError (an EngineError) when there is no WebGPU adapter.
 */
export async function computeGpu(x: AttentionInput): Promise<AttentionOutput> {
  const { H, N, D } = x.dims;
  const { table, cfg } = x;
  const causalText = cfg.causalText ?? false;
  const C = table.start.length;
  const K = cfg.topK;
  const eng = await Engine.create(await nodeGpu());
  try {
    const q = eng.upload(x.q, [H, N, D], 'attention.q');
    const k = eng.upload(x.k, [H, N, D], 'attention.k');
    const v = eng.upload(x.v, [H, N, D], 'attention.v');
    const r = routeInputs(x);
    let routed: Int32Array = new Int32Array(H * N * K).fill(-1);
    let routedT: Tensor | null = null;
    if (cfg.mode === 'moc' && K > MAX_TOP_K) {
      console.error(`moc attention: top_k ${K} > ${MAX_TOP_K}: routing on the CPU`);
      routed = routeReference(r.q, chunkDescriptors(r.k, x.dims, table), x.dims, table, cfg);
      routedT = eng.upload(routed, [H, N, K], 'attention.routed');
    } else if (cfg.mode === 'moc' && K > 0) {
      const start = eng.upload(table.start, [C], 'attention.chunk_start');
      const cols = {
        start,
        kind: eng.upload(table.kind, [C], 'attention.chunk_kind'),
        shot: eng.upload(table.shot, [C], 'attention.chunk_shot'),
      };
      const [qr, kr] = x.route
        ? [eng.upload(r.q, [H, N, D], 'attention.q_route'), eng.upload(r.k, [H, N, D], 'attention.k_route')]
        : [q, k];
      const desc = await chunkMean(eng, kr, start, eng.upload(table.end, [C], 'attention.chunk_end'));
      routedT = await mocRoute(eng, qr, desc, cols, { topK: K, causal: cfg.causal });
      routed = (await eng.read(routedT)) as Int32Array;
    }
    let out: Float32Array;
    let backend = `gpu: ${eng.describe()}`;
    try {
      out = (await eng.read(
        await mocAttention(eng, q, k, v, table, routedT, { mode: cfg.mode, causalText }),
      )) as Float32Array;
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      console.error(`moc attention: ${e.message}: attention on the CPU`);
      out = mocAttentionReference(x.q, x.k, x.v, x.dims, table, routed, K, cfg.mode, causalText);
      backend += ' (attention on the cpu)';
    }
    await eng.sync();
    return { out, routed, sparsity: sparsityOf(routed, K, x.dims, table, cfg.mode, causalText).sparsity, backend };
  } finally {
    eng.destroy();
  }
}

/**
 * @throws InputError when the output holds NaN or ±∞ although the inputs were finite: scores
 * q·k beyond float32's range (the GPU computes in float32). One line, and no output file.
 */
export function checkOutputFinite(x: AttentionInput, r: AttentionOutput): void {
  const { N, D } = x.dims;
  const j = r.out.findIndex((v) => !Number.isFinite(v));
  if (j < 0) return;
  let big = 0;
  for (const t of [x.q, x.k, x.v]) for (let i = 0; i < t.length; i++) big = Math.max(big, Math.abs(t[i]));
  throw new InputError(
    `the output has a non-finite value (${r.out[j]}) at ${shapeText([Math.floor(j / (N * D)), Math.floor(j / D) % N, j % D])} although the inputs are finite: ` +
      `with values up to ${big.toPrecision(3)}, q·k overflows float32 on ${r.backend}; scale q, k and v down`,
  );
}

/** The output file's bytes. */
export function writeAttentionOutput(x: AttentionInput, r: AttentionOutput): Uint8Array {
  const { H, N, D } = x.dims;
  return serializeSafetensors(
    {
      out: { dtype: 'F32', shape: [H, N, D], data: r.out },
      routed: { dtype: 'I32', shape: [H, N, x.cfg.topK], data: r.routed },
    },
    {
      sparsity: String(r.sparsity),
      top_k: String(x.cfg.topK),
      causal: String(x.cfg.causal),
      causal_text: String(x.cfg.causalText ?? false),
      mode: x.cfg.mode,
      backend: r.backend,
      route_view: x.route ? 'q_route,k_route' : 'q,k',
    },
  );
}

export async function run(args: string[]): Promise<number> {
  let opts: { in?: string; out?: string; cpu?: boolean; help?: boolean };
  try {
    opts = parseArgs({
      args,
      options: {
        in: { type: 'string' },
        out: { type: 'string' },
        cpu: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]}; ${USAGE}`);
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  if (!opts.in || !opts.out) throw new UsageError(`--in and --out are required; ${USAGE}`);
  const bytes = await readFileCapped(opts.in, MAX_EXCHANGE_BYTES);
  const x = readAttentionInput(parseSafetensors(bytes, opts.in), opts.in);
  const r = opts.cpu ? computeCpu(x) : await computeGpu(x);
  checkOutputFinite(x, r);
  try {
    await writeFile(opts.out, writeAttentionOutput(x, r));
  } catch (e) {
    throw new InputError(`cannot write ${opts.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { H, N, D } = x.dims;
  console.log(
    `moc attention: wrote ${oneLine(opts.out)}: H=${H} N=${N} D=${D}, ${x.table.start.length} chunks, ${x.cfg.mode}, top_k ${x.cfg.topK}, ` +
      `causal ${x.cfg.causal}${x.cfg.causalText ? ', causal text' : ''}${x.route ? ', routing by q_route/k_route' : ''}, sparsity ${r.sparsity.toFixed(4)} (${r.backend})`,
  );
  return 0;
}
