/**
 * Export: the finished video as MP4 (H.264) or WebM (WebCodecs encoder, mediabunny muxer), one frame as PNG,
 * or one shot as a PNG strip of all its frames. Frames are scaled up with nearest-neighbour
 * sampling (the model's frames are small) so players show them crisp.
 */
import type { VideoCodec } from 'mediabunny';
import { FPS, shotOffsets } from '../board-ops.ts';
import { frameOf, getPreview, getTake, type Clip } from '../media.ts';
import { useStudio } from '../store.ts';

/** The clip each shot plays (live preview first, else its chosen take), in board order. */
export function timelineClips(): Array<Clip | null> {
  const s = useStudio.getState();
  return s.shotIds.map((id) => getPreview(id) ?? (s.chosen[id] ? (getTake(s.chosen[id]) ?? null) : null));
}

/** Frames of the video to export: every frame of every shot that has a take, in order. */
function exportFrames(): Array<{ clip: Clip; frame: number }> {
  const s = useStudio.getState();
  const out: Array<{ clip: Clip; frame: number }> = [];
  s.shotIds.forEach((id) => {
    const take = s.chosen[id] ? getTake(s.chosen[id]) : undefined;
    if (take) for (let f = 0; f < take.frames; f++) out.push({ clip: take, frame: f });
  });
  return out;
}

/** True when at least one shot has a finished take. */
export function canExport(): boolean {
  const s = useStudio.getState();
  return s.shotIds.some((id) => s.chosen[id] && getTake(s.chosen[id]));
}

/** Scale so the longer side is at least `min` pixels, rounded to an even size. */
function scaleFor(w: number, h: number, min = 256): number {
  return Math.max(1, Math.ceil(min / Math.max(w, h)));
}

function drawFrame(
  ctx: CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D,
  clip: Clip,
  f: number,
  scale: number,
): void {
  const img = new ImageData(frameOf(clip, f), clip.width, clip.height);
  const tmp = new OffscreenCanvas(clip.width, clip.height);
  tmp.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, clip.width * scale, clip.height * scale);
}

/** Shot numbers (1-based) with no finished take: a video export leaves them out, and says so. */
export function missingShots(): number[] {
  const s = useStudio.getState();
  return s.shotIds.flatMap((id, i) => (s.chosen[id] && getTake(s.chosen[id]) ? [] : [i + 1]));
}

/** An encoded video, its container and why it is not the one asked for (null when it is). */
export interface EncodedVideo {
  blob: Blob;
  container: 'mp4' | 'webm';
  codec: VideoCodec;
  fallback: string | null;
}

/**
 * Encodes every finished shot, in order, at the storyboard's frame rate: MP4 (H.264) when asked
 * and this browser's WebCodecs can encode it (`VideoEncoder.isConfigSupported`, through
 * mediabunny's canEncodeVideo), else WebM (VP9, else VP8 or AV1) with the reason in `fallback`.
 * @throws Error when nothing is finished or the browser cannot encode video at all.
 */
export async function exportVideo(
  want: 'mp4' | 'webm',
  onProgress?: (done: number, total: number) => void,
): Promise<EncodedVideo> {
  const frames = exportFrames();
  if (!frames.length) throw new Error('no shot is finished yet: generate first');
  if (typeof VideoEncoder === 'undefined')
    throw new Error('this browser has no WebCodecs VideoEncoder, so it cannot encode video');
  const { width, height } = frames[0].clip;
  const scale = scaleFor(width, height);
  const W = width * scale;
  const H = height * scale;
  // The muxer is loaded on first export only (it is most of a megabyte the studio needs rarely).
  const { BufferTarget, CanvasSource, Mp4OutputFormat, Output, QUALITY_HIGH, WebMOutputFormat, canEncodeVideo } =
    await import('mediabunny');
  let container: EncodedVideo['container'] = 'webm';
  let fallback: string | null = null;
  let codec: VideoCodec | null = null;
  if (want === 'mp4') {
    codec = await firstCodec(canEncodeVideo, ['avc'], W, H);
    if (codec) container = 'mp4';
    else
      fallback = `this browser cannot encode H.264 at ${W}×${H} (its WebCodecs encoder says the configuration is not supported), so the video is WebM`;
  }
  codec ??= await firstCodec(canEncodeVideo, ['vp9', 'vp8', 'av1'], W, H);
  if (!codec) throw new Error(`this browser cannot encode ${want === 'mp4' ? 'H.264, ' : ''}VP9, VP8 or AV1 video`);
  const canvas = new OffscreenCanvas(W, H);
  const ctx = canvas.getContext('2d')!;
  const format = container === 'mp4' ? new Mp4OutputFormat({ fastStart: 'in-memory' }) : new WebMOutputFormat();
  const output = new Output({ format, target: new BufferTarget() });
  const source = new CanvasSource(canvas, { codec, bitrate: QUALITY_HIGH, keyFrameInterval: 1 });
  output.addVideoTrack(source, { frameRate: FPS });
  await output.start();
  for (let i = 0; i < frames.length; i++) {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, W, H);
    if (frames[i].clip.width === width && frames[i].clip.height === height)
      drawFrame(ctx, frames[i].clip, frames[i].frame, scale);
    await source.add(i / FPS, 1 / FPS);
    onProgress?.(i + 1, frames.length);
  }
  await output.finalize();
  const buf = output.target.buffer;
  if (!buf) throw new Error(`the ${container.toUpperCase()} muxer produced no data`);
  return { blob: new Blob([buf], { type: `video/${container}` }), container, codec, fallback };
}

type CanEncode = (codec: VideoCodec, options: { width: number; height: number }) => Promise<boolean>;

async function firstCodec(
  canEncode: CanEncode,
  codecs: VideoCodec[],
  width: number,
  height: number,
): Promise<VideoCodec | null> {
  for (const c of codecs) if (await canEncode(c, { width, height }).catch(() => false)) return c;
  return null;
}

/** The frame at `globalFrame` of the timeline as a PNG (scaled up), or null when it has no pixels. */
export async function exportFramePng(globalFrame: number): Promise<Blob | null> {
  const s = useStudio.getState();
  const offsets = shotOffsets(s.board);
  const shot = offsets.findIndex(
    (o, i) => i < s.board.shots.length && globalFrame >= o && globalFrame < offsets[i + 1],
  );
  const clip = timelineClips()[shot];
  if (shot < 0 || !clip) return null;
  const scale = scaleFor(clip.width, clip.height);
  const canvas = new OffscreenCanvas(clip.width * scale, clip.height * scale);
  drawFrame(canvas.getContext('2d')!, clip, globalFrame - offsets[shot], scale);
  return canvas.convertToBlob({ type: 'image/png' });
}

/** Every frame of one take side by side, as one PNG strip (original size). */
export async function exportTakeStripPng(takeId: string): Promise<Blob | null> {
  const clip = getTake(takeId);
  if (!clip) return null;
  const canvas = new OffscreenCanvas(clip.width * clip.frames, clip.height);
  const ctx = canvas.getContext('2d')!;
  for (let f = 0; f < clip.frames; f++)
    ctx.putImageData(new ImageData(frameOf(clip, f), clip.width, clip.height), f * clip.width, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

/** Saves `blob` as a file through a temporary link. */
export function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
