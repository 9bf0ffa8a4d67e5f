/**
 * Teaching mode: pick a query token on a frame and ask the worker to walk MoC through for it
 * (worker/explain.ts: the storyboard's real chunk table, a small traced example on the CPU).
 */
import { WorkerError } from '../../worker/client.ts';
import type { ExplainRequest } from '../../worker/protocol.ts';
import { useStudio } from '../store.ts';
import type { TeachQuery } from '../slices/player.ts';
import { engineClient } from './engine.ts';

/** Geometry used before a model is loaded (the shipped world's frames and captions). */
export const ASSUMED = { imageSize: 64, patchSize: 8, textLen: 16 } as const;

/** Frame geometry of the loaded model, or ASSUMED. */
export function teachGeometry(): { imageSize: number; patchSize: number; textLen: number; assumed: boolean } {
  const info = useStudio.getState().model.info;
  return info ? { imageSize: info.imageSize, patchSize: info.patchSize, textLen: info.textLen, assumed: false } : { ...ASSUMED, assumed: true };
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

/** Explains `query` (or the current one again, e.g. after settings changed). Never throws. */
export async function explain(query: TeachQuery | null = useStudio.getState().teach.query, head = 0): Promise<void> {
  const st = useStudio.getState();
  if (!query) return;
  const client = engineClient();
  const shot = st.shotIds.indexOf(query.shotId);
  if (!client || shot < 0) {
    st.setTeach({ query, phase: 'error', result: null, error: { code: 'not-initialised', message: client ? 'That shot is no longer in the storyboard' : 'The engine is not ready' } });
    return;
  }
  const g = teachGeometry();
  const grid = g.imageSize / g.patchSize;
  const a = st.settings.attention;
  const req: ExplainRequest = {
    globalCaptionTokens: g.textLen,
    shots: st.board.shots.map((s) => ({ captionTokens: g.textLen, frames: s.frames })),
    tokensPerFrame: grid * grid,
    chunkFrames: a.chunkFrames,
    topK: a.topK,
    causal: a.causal,
    query: { shot, frame: Math.min(query.frame, st.board.shots[shot].frames - 1), patch: query.patch },
    head,
    seed: st.board.shots[shot].seed,
  };
  st.setTeach({ open: true, query, phase: 'computing', error: null });
  try {
    const result = await client.explain(req);
    if (useStudio.getState().teach.query === query) useStudio.getState().setTeach({ phase: 'ready', result, stage: 0 });
  } catch (e) {
    const error = e instanceof WorkerError ? e.toInfo() : { code: 'internal' as const, message: String(e) };
    if (useStudio.getState().teach.query === query) useStudio.getState().setTeach({ phase: 'error', result: null, error });
  }
}
