/**
 * Teaching mode: pick a query token on a frame and ask the worker to walk MoC through for it.
 * Once the storyboard has a generated video (every shot's chosen take) and the model is loaded,
 * the worker runs the model once on that video and explains with the network's own q and k
 * (worker/explain-network.ts); before that, a seeded example on the CPU over the storyboard's
 * real chunk table stands in (worker/explain.ts), and the panel says why.
 *
 * Nothing here changes the storyboard or the takes: their frames are copied to the worker.
 */
import { WorkerError } from '../../worker/client.ts';
import type { ExplainNetwork, ExplainRequest } from '../../worker/protocol.ts';
import { getTake } from '../media.ts';
import { isRunning } from '../slices/generation.ts';
import type { TeachQuery } from '../slices/player.ts';
import { useStudio } from '../store.ts';
import type { TakeMeta } from '../types.ts';
import { engineClient } from './engine.ts';
import { ensureModel } from './model.ts';

/** Geometry used before a model is loaded (the shipped world's frames and captions). */
export const ASSUMED = { imageSize: 64, patchSize: 8, textLen: 16 } as const;

/** Frame geometry of the loaded model, or ASSUMED. */
export function teachGeometry(): { imageSize: number; patchSize: number; textLen: number; assumed: boolean } {
  const info = useStudio.getState().model.info;
  return info
    ? { imageSize: info.imageSize, patchSize: info.patchSize, textLen: info.textLen, assumed: false }
    : { ...ASSUMED, assumed: true };
}

export function setTeachOpen(open: boolean): void {
  useStudio.getState().setTeach({ open });
}

/** Picks the token under pixel (x, y) of frame `frame` of a shot and explains it. */
export function explainAt(shotId: string, frame: number, x: number, y: number): Promise<void> {
  const g = teachGeometry();
  const grid = g.imageSize / g.patchSize;
  const px = Math.min(grid - 1, Math.max(0, Math.floor(x / g.patchSize)));
  const py = Math.min(grid - 1, Math.max(0, Math.floor(y / g.patchSize)));
  return explain({ shotId, frame, patch: py * grid + px });
}

/** The generated video the network runs on: every shot's chosen take, and the query shot's take (its run's settings). */
interface Video {
  frames: Uint8ClampedArray[];
  take: TakeMeta;
}

/**
 * The storyboard's generated video, or why there is none to run the network on (the seeded
 * example is shown instead). Needs every shot's chosen take, of the shot's current length and
 * the loaded model's frame size, and no run in progress.
 */
export function teachVideo(queryShot: number): Video | { reason: string } {
  const st = useStudio.getState();
  const frames: Uint8ClampedArray[] = [];
  const missing: number[] = [];
  st.shotIds.forEach((id, s) => {
    const clip = st.chosen[id] ? getTake(st.chosen[id]) : undefined;
    if (clip && clip.frames === st.board.shots[s].frames) frames.push(clip.pixels);
    else missing.push(s);
  });
  if (missing.length === st.shotIds.length) return { reason: 'nothing has been generated yet' };
  if (missing.length)
    return {
      reason: `shot${missing.length > 1 ? 's' : ''} ${missing.map((s) => s + 1).join(', ')} ${missing.length > 1 ? 'have' : 'has'} no generated take of ${missing.length > 1 ? 'their' : 'its'} current length`,
    };
  const info = st.model.info;
  if (st.model.phase !== 'ready' || !info)
    return { reason: `no model is loaded${st.model.error ? ` (${st.model.error.message})` : ''}` };
  const clip = getTake(st.chosen[st.shotIds[0]])!;
  if (clip.width !== info.imageSize)
    return {
      reason: `the takes are ${clip.width}×${clip.height} frames and model ${info.name} takes ${info.imageSize}×${info.imageSize}`,
    };
  if (isRunning(st.run.phase)) return { reason: 'a generation is running (pick the token again when it has finished)' };
  const shotId = st.shotIds[queryShot];
  const take = st.takes[shotId]?.find((t) => t.id === st.chosen[shotId]);
  if (!take) return { reason: `shot ${queryShot + 1}'s take has no record of its run` };
  return { frames, take };
}

/** Where the explanation's numbers come from: `network` to run the model, or the seeded example's reason. */
async function source(
  queryShot: number,
  layer: number | null,
): Promise<{ network: ExplainNetwork; take: TakeMeta } | { reason: string }> {
  if (Object.keys(useStudio.getState().chosen).length) await ensureModel(); // there is video: load the model, or wait for the load under way (no-op when loaded)
  const video = teachVideo(queryShot);
  if ('reason' in video) return video;
  const st = useStudio.getState();
  const depth = st.model.info!.depth;
  const t = 1 / Math.max(1, video.take.steps); // the run's last sampler step
  return {
    network: { storyboard: st.board, frames: video.frames, t, layer: Math.min(depth - 1, layer ?? depth - 1) },
    take: video.take,
  };
}

/** Latest request: an earlier answer arriving late is dropped. */
let latest = 0;

/**
 * Explains `query` (or the current one again, e.g. for another head or layer). The head and
 * layer default to the ones shown. Never throws: a failure is one line in `teach.error`.
 */
export async function explain(
  query: TeachQuery | null = useStudio.getState().teach.query,
  opts: { head?: number; layer?: number } = {},
): Promise<void> {
  const st = useStudio.getState();
  if (!query) return;
  const mine = ++latest;
  const client = engineClient();
  const shot = st.shotIds.indexOf(query.shotId);
  if (!client || shot < 0) {
    st.setTeach({
      query,
      phase: 'error',
      result: null,
      error: {
        code: 'not-initialised',
        message: client ? 'That shot is no longer in the storyboard' : 'The engine is not ready',
      },
    });
    return;
  }
  const layer = opts.layer ?? st.teach.layer;
  st.setTeach({ open: true, query, layer, phase: 'computing', error: null });
  const from = await source(shot, layer);
  const now = useStudio.getState();
  if (now.shotIds.indexOf(query.shotId) !== shot) {
    if (mine === latest)
      now.setTeach({
        phase: 'error',
        result: null,
        error: { code: 'bad-request', message: 'The storyboard changed meanwhile: pick the token again' },
      });
    return;
  }
  const g = teachGeometry();
  const grid = g.imageSize / g.patchSize;
  const previous = now.teach.result;
  const origin = 'network' in from ? 'network' : 'example';
  const head = opts.head ?? (previous?.origin === origin && previous.head < previous.heads ? previous.head : 0);
  const a = 'network' in from ? from.take.attention : now.settings.attention;
  const board = 'network' in from ? from.network.storyboard : now.board;
  const req: ExplainRequest = {
    globalCaptionTokens: g.textLen,
    shots: board.shots.map((s) => ({ captionTokens: g.textLen, frames: s.frames })),
    tokensPerFrame: grid * grid,
    chunkFrames: a.chunkFrames,
    topK: a.topK,
    causal: a.causal,
    query: { shot, frame: Math.min(query.frame, board.shots[shot].frames - 1), patch: query.patch },
    head,
    seed: board.shots[shot].seed,
    ...('network' in from ? { network: from.network } : {}),
  };
  try {
    const result = await client.explain(req);
    if (mine === latest && useStudio.getState().teach.query === query)
      useStudio
        .getState()
        .setTeach({ phase: 'ready', result, fallback: 'reason' in from ? from.reason : null, stage: 0 });
  } catch (e) {
    const error = e instanceof WorkerError ? e.toInfo() : { code: 'internal' as const, message: String(e) };
    if (mine === latest && useStudio.getState().teach.query === query)
      useStudio.getState().setTeach({ phase: 'error', result: null, error });
  }
}
