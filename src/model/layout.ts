/**
 * Token layout and content-aligned chunking (MOC.md §3).
 *
 * The token stream follows LCT: the global caption, then for each shot its caption followed by
 * its latent frames. Every caption is one text chunk; video chunks are `chunkFrames` consecutive
 * frames of one shot (the last chunk of a shot may hold fewer), never crossing a shot boundary.
 *
 * Legend: N tokens, C chunks. A chunk table is kept twice: as objects (`chunks`, for reading) and
 * as Int32Array columns (`start`, `end`, `shot`, `kind`, for kernels and exchange files).
 */

import { KIND_TEXT, KIND_VIDEO } from '../engine/kernels/moc-plan.ts';
import { InputError } from './errors.ts';

export type ChunkKind = 'text' | 'video';

/** Column encoding of `kind`, as in the exchange file (MOC.md §4): defined once, by the kernels' chunk table. */
export { KIND_TEXT, KIND_VIDEO };

export interface Chunk {
  /** First token (inclusive). */
  readonly start: number;
  /** One past the last token (exclusive). */
  readonly end: number;
  readonly kind: ChunkKind;
  /** Shot index; -1 for the global caption, which belongs to no shot. */
  readonly shot: number;
}

export interface ChunkTable {
  readonly chunks: readonly Chunk[];
  /** Tokens covered: the end of the last chunk (0 for an empty table). */
  readonly n: number;
  readonly start: Int32Array; // [C]
  readonly end: Int32Array; // [C]
  readonly shot: Int32Array; // [C]
  readonly kind: Int32Array; // [C] KIND_TEXT | KIND_VIDEO
}

export interface ShotSpec {
  /** Tokens of this shot's caption (0: the shot has no caption chunk). */
  captionTokens: number;
  /** Latent frames of this shot. */
  frames: number;
}

/** A storyboard reduced to what the layout needs. */
export interface LayoutSpec {
  /** Tokens of the global caption (0: none). */
  globalCaptionTokens: number;
  shots: ShotSpec[];
  /** Tokens per latent frame (h·w of the patchified latent). */
  tokensPerFrame: number;
  /** Frames per video chunk (≥ 1). */
  chunkFrames: number;
}

/** A chunk table, or the description it was built from, that breaks the §3 rules. */
export class LayoutError extends InputError {
  override name = 'LayoutError';
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new LayoutError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/**
 * Builds the chunk table of a storyboard in LCT stream order. Empty captions produce no chunk.
 * @throws LayoutError for negative or fractional counts, tokensPerFrame or chunkFrames < 1.
 */
export function buildChunkTable(spec: LayoutSpec): ChunkTable {
  checkCount('globalCaptionTokens', spec.globalCaptionTokens, 0);
  checkCount('tokensPerFrame', spec.tokensPerFrame, 1);
  checkCount('chunkFrames', spec.chunkFrames, 1);
  const chunks: Chunk[] = [];
  let t = 0;
  const push = (len: number, kind: ChunkKind, shot: number): void => {
    chunks.push({ start: t, end: t + len, kind, shot });
    t += len;
  };
  if (spec.globalCaptionTokens > 0) push(spec.globalCaptionTokens, 'text', -1);
  spec.shots.forEach((s, shot) => {
    checkCount(`shots[${shot}].captionTokens`, s.captionTokens, 0);
    checkCount(`shots[${shot}].frames`, s.frames, 0);
    if (s.captionTokens > 0) push(s.captionTokens, 'text', shot);
    for (let f = 0; f < s.frames; f += spec.chunkFrames) {
      push(Math.min(spec.chunkFrames, s.frames - f) * spec.tokensPerFrame, 'video', shot);
    }
  });
  return tableFromChunks(chunks);
}

/** A table from chunk objects (columns derived). Does not validate; see validateChunks. */
export function tableFromChunks(chunks: readonly Chunk[]): ChunkTable {
  const C = chunks.length;
  const start = new Int32Array(C);
  const end = new Int32Array(C);
  const shot = new Int32Array(C);
  const kind = new Int32Array(C);
  chunks.forEach((c, i) => {
    start[i] = c.start;
    end[i] = c.end;
    shot[i] = c.shot;
    kind[i] = c.kind === 'text' ? KIND_TEXT : KIND_VIDEO;
  });
  return { chunks, n: C ? end[C - 1] : 0, start, end, shot, kind };
}

/**
 * A table from Int32Array columns (e.g. an exchange file's `chunk_*` tensors).
 * @throws LayoutError when the columns differ in length or a kind is not 0 (text) or 1 (video).
 */
export function tableFromColumns(start: Int32Array, end: Int32Array, shot: Int32Array, kind: Int32Array): ChunkTable {
  const C = start.length;
  if (end.length !== C || shot.length !== C || kind.length !== C) {
    throw new LayoutError(
      `chunk columns differ in length: start ${C}, end ${end.length}, shot ${shot.length}, kind ${kind.length}`,
    );
  }
  const chunks: Chunk[] = [];
  for (let c = 0; c < C; c++) {
    if (kind[c] !== KIND_TEXT && kind[c] !== KIND_VIDEO)
      throw new LayoutError(`chunk ${c} has kind ${kind[c]} (0 = text, 1 = video)`);
    chunks.push({ start: start[c], end: end[c], kind: kind[c] === KIND_TEXT ? 'text' : 'video', shot: shot[c] });
  }
  return {
    chunks,
    n: C ? end[C - 1] : 0,
    start: start.slice(),
    end: end.slice(),
    shot: shot.slice(),
    kind: kind.slice(),
  };
}

/**
 * Checks the §3 rules: at least one chunk; chunks in stream order, contiguous from token 0 to
 * token N with no gaps or overlaps; every chunk non-empty; shots are integers ≥ -1 and only text
 * chunks may have shot -1.
 * @throws LayoutError with one line naming the first offending chunk.
 */
export function validateChunks(table: ChunkTable, N: number): void {
  const { start, end, shot, kind } = table;
  const C = start.length;
  if (C === 0) throw new LayoutError('the chunk table is empty');
  if (end.length !== C || shot.length !== C || kind.length !== C)
    throw new LayoutError('chunk columns differ in length');
  let expect = 0;
  for (let c = 0; c < C; c++) {
    const s = start[c];
    const e = end[c];
    if (s < expect) throw new LayoutError(`chunk ${c} [${s}, ${e}) overlaps chunk ${c - 1}, which ends at ${expect}`);
    if (s > expect) throw new LayoutError(`gap before chunk ${c}: tokens [${expect}, ${s}) belong to no chunk`);
    if (e <= s) throw new LayoutError(`chunk ${c} [${s}, ${e}) is empty (start must be < end)`);
    if (e > N) throw new LayoutError(`chunk ${c} [${s}, ${e}) exceeds N = ${N}`);
    if (kind[c] !== KIND_TEXT && kind[c] !== KIND_VIDEO)
      throw new LayoutError(`chunk ${c} has kind ${kind[c]} (0 = text, 1 = video)`);
    if (!Number.isInteger(shot[c]) || shot[c] < -1)
      throw new LayoutError(`chunk ${c} has shot ${shot[c]} (must be ≥ -1)`);
    if (shot[c] === -1 && kind[c] === KIND_VIDEO)
      throw new LayoutError(`chunk ${c} is video with shot -1 (only text may belong to no shot)`);
    expect = e;
  }
  if (expect !== N) throw new LayoutError(`chunks cover tokens [0, ${expect}) but N = ${N}`);
}

/** token → chunk index, [N]. Assumes a valid table. */
export function tokenChunks(table: ChunkTable): Int32Array {
  const out = new Int32Array(table.n);
  for (let c = 0; c < table.start.length; c++) out.fill(c, table.start[c], table.end[c]);
  return out;
}

/** token → shot (-1 for the global caption), [N]. Assumes a valid table. */
export function tokenShots(table: ChunkTable): Int32Array {
  const out = new Int32Array(table.n);
  for (let c = 0; c < table.start.length; c++) out.fill(table.shot[c], table.start[c], table.end[c]);
  return out;
}

/** Total tokens of a layout without building it. */
export function layoutTokens(spec: LayoutSpec): number {
  return (
    spec.globalCaptionTokens + spec.shots.reduce((n, s) => n + s.captionTokens + s.frames * spec.tokensPerFrame, 0)
  );
}
