/**
 * Pixels, outside the store: finished takes (by take id) and live previews (by shot id).
 * The store keeps only their metadata and a `mediaVersion` counter that changes when pixels do,
 * so components that draw frames re-render exactly then.
 *
 * Frames are RGBA [frames, height, width, 4], the layout GenerateResult uses.
 */

export interface Clip {
  pixels: Uint8ClampedArray;
  frames: number;
  width: number;
  height: number;
}

const takes = new Map<string, Clip>();
const previews = new Map<string, Clip>();

export function putTake(id: string, clip: Clip): void {
  takes.set(id, clip);
}

export function getTake(id: string): Clip | undefined {
  return takes.get(id);
}

export function dropTakes(ids: Iterable<string>): void {
  for (const id of ids) takes.delete(id);
}

export function putPreview(shotId: string, clip: Clip): void {
  previews.set(shotId, clip);
}

export function getPreview(shotId: string): Clip | undefined {
  return previews.get(shotId);
}

export function clearPreviews(shotIds?: Iterable<string>): void {
  if (!shotIds) previews.clear();
  else for (const id of shotIds) previews.delete(id);
}

/** One frame of a clip as ImageData-ready bytes (a view, not a copy). */
export function frameOf(clip: Clip, f: number): Uint8ClampedArray<ArrayBuffer> {
  const size = clip.width * clip.height * 4;
  const i = Math.min(Math.max(f, 0), clip.frames - 1);
  return new Uint8ClampedArray(clip.pixels.buffer as ArrayBuffer, clip.pixels.byteOffset + i * size, size);
}

/** Frames given as a flat RGBA array, checked against the expected geometry. */
export function clipFrom(pixels: Uint8ClampedArray, width: number, height: number): Clip {
  const size = width * height * 4;
  if (size === 0 || pixels.length % size !== 0) {
    throw new Error(`frames of ${pixels.length} bytes are not whole ${width}×${height} RGBA frames`);
  }
  return { pixels, frames: pixels.length / size, width, height };
}
