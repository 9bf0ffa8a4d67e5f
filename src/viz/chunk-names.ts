/**
 * One name per chunk, used everywhere a chunk is named (the routing graph, its inspector and
 * score chart, teaching mode): "Global caption", "Shot 2 caption", "Shot 2 · frame 3" or, for a
 * chunk of several frames, "Shot 2 · frames 3–4". Frames count from 1 within their shot.
 */
import type { Chunk } from '../model/layout.ts';

/**
 * Names the chunks of a stream-order chunk list.
 * @param tokensPerFrame tokens of one frame (a video chunk of n·tokensPerFrame tokens spans n frames)
 * @param shotNo the number (from 1) shown for chunk shot s; by default s + 1
 */
export function chunkNamer(
  chunks: readonly Chunk[],
  tokensPerFrame: number,
  shotNo: (shot: number) => number = (s) => s + 1,
): (chunk: number) => string {
  const unit = Math.max(1, tokensPerFrame);
  const seen = new Map<number, number>();
  const first: number[] = [];
  chunks.forEach((c, i) => {
    if (c.kind !== 'video') return;
    first[i] = seen.get(c.shot) ?? 0;
    seen.set(c.shot, first[i] + (c.end - c.start) / unit);
  });
  return (i) => {
    const c = chunks[i];
    if (!c) return '';
    const shot = `Shot ${shotNo(c.shot)}`;
    if (c.kind === 'text') return c.shot < 0 ? 'Global caption' : `${shot} caption`;
    const f0 = Math.floor(first[i]) + 1;
    const f1 = Math.ceil(first[i] + (c.end - c.start) / unit);
    return f0 >= f1 ? `${shot} · frame ${f0}` : `${shot} · frames ${f0}–${f1}`;
  };
}

/** A few characters for tight places: "Global caption" → "G", "Shot 2 caption" → "T2", "Shot 2 · frame 3" (or "frames 3–4") → "2·3". */
export function shortChunkName(name: string): string {
  if (name === 'Global caption') return 'G';
  const m = /^Shot (\d+)(?: caption| · frames? (\d+))/.exec(name);
  if (!m) return '';
  return m[2] ? `${m[1]}·${m[2]}` : `T${m[1]}`;
}
