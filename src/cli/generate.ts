/**
 * `moc generate STORYBOARD.json --out DIR [options]`: samples a storyboard with the MoC DiT on
 * the engine (Dawn; SwiftShader where there is no GPU) and writes
 *   DIR/shot-SS/frame-FFF.png   every frame of every shot (0-based indices)
 *   DIR/preview.png             an animated PNG (APNG) of all shots in order, at the model's fps
 *   DIR/routing.json            the stream-order chunk table and, per traced step, per layer: the
 *                               routed edges [from, to, count] (query tokens of chunk `from` that
 *                               routed to chunk `to`, summed over heads; only pairs with a count)
 *                               and the sparsity, mean and per head
 *   DIR/timing.json             seconds per video, wall ms per step (mean, median), kernel
 *                               dispatches per step; with --profile, ms per step split
 *                               attention / routing / other
 * Options: --model DIR (default: the "default" entry of public/models/index.json),
 * --attention moc|dense|shot, --top-k K, --chunk-frames N (defaults: the model's config),
 * --steps N (20), --guidance G (3), --seed N (shot i gets seed N + i instead of its own),
 * --trace-every N (1; the last step is always traced), --profile (time the phases of every step;
 * slows the steps it times). Progress goes to stderr; bad input is one
 * line and exit code 1; Ctrl-C cancels (exit 130).
 * DIR is all-or-nothing (OutputFolder): the files go to a temporary folder beside it, renamed to
 * DIR at the end; a DIR that is not empty is refused unless --replace is given (then it is
 * replaced whole, never mixed with this run's files); a failed or cancelled run leaves it as it was.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine } from '../engine/engine.ts';
import { nodeGpu } from '../engine/host-node.ts';
import {
  isAttentionMode,
  type AttentionMode,
  type GenerateProgress,
  type GenerateRequest,
  type GenerateResult,
  type ModelEntry,
  type StepTimings,
} from '../model/api.ts';
import { shotLengthNote, type ModelConfig } from '../model/config.ts';
import { Generator, prepareRequest } from '../model/generate.ts';
import { MAX_JSON_BYTES, MAX_STORYBOARD_BYTES, modelFileCap } from '../model/limits.ts';
import { oneLine } from '../model/errors.ts';
import { routingSummary } from '../model/routing-json.ts';
import { parseStoryboardJson } from '../model/storyboard.ts';
import { loadModel, type LoadedModel } from '../model/weights.ts';
import { OutputFolder, readFileCapped } from './files.ts';
import { UsageError, userMessage } from './main.ts';
import { encodeApng, encodePng, upscale } from './png.ts';

const USAGE =
  'usage: moc generate STORYBOARD.json --out DIR [--replace] [--model DIR] [--attention moc|dense|shot] [--top-k K] [--chunk-frames N] [--steps N] [--guidance G] [--seed N] [--trace-every N] [--profile]';

export interface GenerateArgs {
  storyboard: string;
  out: string;
  replace: boolean;
  model?: string;
  attention?: AttentionMode;
  topK?: number;
  chunkFrames?: number;
  steps: number;
  guidance: number;
  seed?: number;
  traceEvery: number;
  profile: boolean;
}

function int(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

/** @throws UsageError for unknown options, a missing STORYBOARD or --out, or bad values. */
export function parseGenerateArgs(argv: string[]): GenerateArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string' },
        replace: { type: 'boolean' },
        model: { type: 'string' },
        attention: { type: 'string' },
        'top-k': { type: 'string' },
        'chunk-frames': { type: 'string' },
        steps: { type: 'string' },
        guidance: { type: 'string' },
        seed: { type: 'string' },
        'trace-every': { type: 'string' },
        profile: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]}; ${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1)
    throw new UsageError(`expected one STORYBOARD.json, got ${positionals.length}; ${USAGE}`);
  if (!v.out) throw new UsageError(`--out DIR is required; ${USAGE}`);
  const mode = v.attention;
  if (mode !== undefined && !isAttentionMode(mode))
    throw new UsageError(`--attention must be moc, dense or shot, got '${mode}'`);
  const guidance = v.guidance === undefined ? 3 : Number(v.guidance);
  if (!Number.isFinite(guidance)) throw new UsageError(`--guidance must be a number, got '${v.guidance}'`);
  return {
    storyboard: positionals[0],
    out: v.out,
    replace: v.replace ?? false,
    model: v.model,
    attention: mode,
    topK: int('top-k', v['top-k'], 0),
    chunkFrames: int('chunk-frames', v['chunk-frames'], 1),
    steps: int('steps', v.steps, 1) ?? 20,
    guidance,
    seed: int('seed', v.seed, 0),
    traceEvery: int('trace-every', v['trace-every'], 0) ?? 1,
    profile: v.profile ?? false,
  };
}

/**
 * The default model folder: public/models/<the entry with "default": true> of the first
 * public/models/index.json found from the working directory upwards.
 * @throws UsageError when there is none.
 */
export async function defaultModelDir(from = process.cwd()): Promise<string> {
  let dir = resolve(from);
  for (;;) {
    const index = join(dir, 'public/models/index.json');
    if (existsSync(index)) {
      let models: ModelEntry[];
      try {
        models = (
          JSON.parse(new TextDecoder().decode(await readFileCapped(index, MAX_JSON_BYTES))) as { models: ModelEntry[] }
        ).models;
      } catch (e) {
        throw new UsageError(`${index}: not a valid model index (${(e as Error).message.split('\n')[0]})`);
      }
      const entry = models?.find((m) => m.default) ?? models?.[0];
      if (!entry) throw new UsageError(`${index} lists no model; pass --model DIR`);
      return join(dir, 'public', entry.path);
    }
    const up = dirname(dir);
    if (up === dir)
      throw new UsageError(
        'no --model given and no public/models/index.json found from here upwards; pass --model DIR',
      );
    dir = up;
  }
}

/** Reads a model folder from disk (loadModel validates it; each file is capped by its kind). */
export function loadModelDir(dir: string): Promise<LoadedModel> {
  return loadModel((name) => readFileCapped(join(dir, name), modelFileCap(name)), dir);
}

function progressLine(p: GenerateProgress): string {
  const width = 30;
  const done = Math.round((p.step / p.steps) * width);
  const per = p.elapsedMs / p.step / 1000;
  const eta = per * (p.steps - p.step);
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] step ${p.step}/${p.steps}  ${per.toFixed(2)} s/step  ETA ${eta.toFixed(0)} s`;
}

async function writeOutputs(
  dir: OutputFolder,
  r: GenerateResult,
  req: GenerateRequest,
  gen: Generator,
  eng: Engine,
): Promise<void> {
  const size = gen.config.imageSize;
  const px = size * size * 4;
  const all: ArrayLike<number>[] = [];
  for (const s of r.shots) {
    const d = `shot-${String(s.shot).padStart(2, '0')}`;
    const F = s.frames.length / px;
    for (let f = 0; f < F; f++) {
      const frame = s.frames.subarray(f * px, (f + 1) * px);
      all.push(frame);
      await dir.write(join(d, `frame-${String(f).padStart(3, '0')}.png`), encodePng(frame, size, size));
    }
  }
  const k = Math.max(1, Math.floor(256 / size));
  await dir.write(
    'preview.png',
    encodeApng(
      all.map((f) => upscale(f, size, size, k)),
      size * k,
      size * k,
      gen.config.fps,
    ),
  );
  await dir.write('routing.json', JSON.stringify(routingSummary(r, req.attention, gen.config.heads)));
  const profiled = r.timings.filter((t) => t.attention !== undefined);
  const mean = (ts: StepTimings[], key: 'attention' | 'routing' | 'other' | 'total' | 'dispatches'): number =>
    ts.reduce((a, t) => a + (t[key] ?? 0), 0) / (ts.length || 1);
  const totals = r.timings.map((t) => t.total).sort((a, b) => a - b);
  const timing = {
    device: eng.describe(),
    timer: profiled.length
      ? eng.features.timestamp
        ? 'gpu timestamps (attention/routing/other), wall (total)'
        : 'wall clock around synced phases'
      : 'wall clock (total)',
    model: gen.config.name,
    attention: req.attention,
    steps: req.steps,
    modelCallsPerStep: req.guidance !== 1 ? 2 : 1,
    frames: r.shots.reduce((a, s) => a + s.frames.length / px, 0),
    secondsPerVideo: r.totalMs / 1000,
    // pooled storage buffers at their peak (weights, activations, per-layout constants); the MoC
    // kernel's scratch and uniform buffers are not pooled and not counted
    peakPooledMiB: eng.pool.stats().peakBytes / 2 ** 20,
    msPerStep: {
      total: mean(r.timings, 'total'),
      medianTotal: totals.length ? totals[totals.length >> 1] : 0,
      dispatches: mean(r.timings, 'dispatches'),
      ...(profiled.length
        ? { attention: mean(profiled, 'attention'), routing: mean(profiled, 'routing'), other: mean(profiled, 'other') }
        : {}),
    },
    perStep: r.timings,
  };
  await dir.write('timing.json', JSON.stringify(timing, null, 1));
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  try {
    return await generate(parseGenerateArgs(argv));
  } catch (e) {
    const msg = userMessage(e);
    if (msg !== null) {
      console.error(`moc generate: ${msg}`);
      return 1;
    }
    if ((e as Error)?.name === 'AbortError') {
      console.error('\nmoc generate: cancelled');
      return 130;
    }
    throw e;
  }
}

/** Shots (1-based) whose length the model was not trained on, by what that means (shotLengthNote). */
export function offLengthShots(shots: readonly { frames: number }[], cfg: ModelConfig): Map<string, number[]> {
  const out = new Map<string, number[]>();
  shots.forEach((s, i) => {
    const note = shotLengthNote(s.frames, cfg.trainFrames);
    if (note) out.set(note, [...(out.get(note) ?? []), i + 1]);
  });
  return out;
}

async function generate(a: GenerateArgs): Promise<number> {
  const board = parseStoryboardJson(new TextDecoder().decode(await readFileCapped(a.storyboard, MAX_STORYBOARD_BYTES)));
  const modelDir = a.model ?? (await defaultModelDir());
  if (!existsSync(modelDir)) throw new UsageError(`model folder ${modelDir} does not exist`);
  const model = await loadModelDir(modelDir);
  const cfg = model.config;
  const req: GenerateRequest = {
    storyboard:
      a.seed === undefined ? board : { ...board, shots: board.shots.map((s, i) => ({ ...s, seed: a.seed! + i })) },
    steps: a.steps,
    guidance: a.guidance,
    attention: {
      mode: a.attention ?? 'moc',
      topK: a.topK ?? cfg.topK,
      chunkFrames: a.chunkFrames ?? cfg.chunkFrames,
      causal: cfg.causal,
    },
    traceEvery: a.traceEvery,
    profile: a.profile,
  };
  prepareRequest(model, req); // every input problem, before the GPU starts
  for (const [note, shots] of offLengthShots(board.shots, cfg)) {
    console.error(`moc generate: note: shot${shots.length > 1 ? 's' : ''} ${shots.join(', ')}: ${note}`);
  }
  const out = await OutputFolder.begin(a.out, { replace: a.replace });
  let eng: Engine | undefined;
  let gen: Generator | undefined;
  const ac = new AbortController();
  const onSigint = (): void => ac.abort(new DOMException('cancelled', 'AbortError'));
  process.once('SIGINT', onSigint);
  const tty = process.stderr.isTTY;
  try {
    eng = await Engine.create(await nodeGpu());
    gen = Generator.create(eng, model);
    console.error(
      `moc generate: ${oneLine(cfg.name)} on ${eng.describe()}; ${req.storyboard.shots.length} shots, ${req.steps} steps, ${req.attention.mode} attention`,
    );
    const r = await gen.generate(
      req,
      (p) => process.stderr.write(tty ? `\r${progressLine(p)}` : `${progressLine(p)}\n`),
      ac.signal,
    );
    if (tty) process.stderr.write('\n');
    await writeOutputs(out, r, req, gen, eng);
    await out.commit();
    console.error(
      `moc generate: wrote ${oneLine(a.out)} (${(r.totalMs / 1000).toFixed(1)} s, sparsity ${(r.sparsity * 100).toFixed(1)}%${r.cache ? `; ${r.cache.summary}` : ''})`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await out.discard();
    gen?.dispose();
    eng?.destroy();
  }
}
