/** Labels that people can read: shot labels and score-chart ticks never overlap or leave the canvas; one chunk name everywhere. */
import { describe, expect, it } from 'vitest';
import { buildChunkTable } from '../../src/model/layout.ts';
import { chunkNamer, shortChunkName } from '../../src/viz/chunk-names.ts';
import { layoutDag } from '../../src/viz/dag-layout.ts';
import { placeLabels, shotLabels, textWidth, type PlacedLabel } from '../../src/viz/labels.ts';

/** No two labels closer than `gap`, every one inside [min, max]. */
function expectReadable(placed: PlacedLabel[], min: number, max: number, gap: number): void {
  for (const p of placed) {
    expect(p.left).toBeGreaterThanOrEqual(min);
    expect(p.left + p.width).toBeLessThanOrEqual(max);
  }
  for (let i = 1; i < placed.length; i++)
    expect(placed[i].left).toBeGreaterThanOrEqual(placed[i - 1].left + placed[i - 1].width + gap);
}

/** The graph's shot bands in pixels for `shots` shots of `frames` frames on a canvas `width` wide (as routing-scene.ts fits them). */
function bands(shots: number, frames: number, width: number) {
  const table = buildChunkTable({
    globalCaptionTokens: 4,
    shots: Array.from({ length: shots }, () => ({ captionTokens: 4, frames })),
    tokensPerFrame: 16,
    chunkFrames: 1,
  });
  const L = layoutDag(table, 16);
  const px = width / (L.bounds.x1 - L.bounds.x0 + 1.2);
  const at = (x: number) => (x - L.bounds.x0 + 0.6) * px;
  return L.shots.map((s) => ({ x0: at(s.x0), x1: at(s.x1), long: `Shot ${s.shot + 1}`, short: String(s.shot + 1) }));
}

describe('shot labels', () => {
  it('names every shot in full at 8 shots on a graph 700 px wide', () => {
    const placed = shotLabels(bands(8, 8, 700), 12, 2, 698);
    expect(placed.map((p) => p.text)).toEqual([
      'Shot 1',
      'Shot 2',
      'Shot 3',
      'Shot 4',
      'Shot 5',
      'Shot 6',
      'Shot 7',
      'Shot 8',
    ]);
    expectReadable(placed, 2, 698, 6);
  });

  it('falls back to numbers that do not overlap at 32 shots', () => {
    for (const width of [400, 700, 1200]) {
      const placed = shotLabels(bands(32, 8, width), 12, 2, width - 2);
      expectReadable(placed, 2, width - 2, 6);
      expect(placed.length).toBeGreaterThanOrEqual(Math.min(32, Math.floor(width / 40)));
      expect(placed.every((p) => /^\d+$/.test(p.text))).toBe(true);
    }
  });

  it('labels only the shots in view when zoomed in, by the part in view', () => {
    const b = bands(32, 8, 4000).map((x) => ({ ...x, x0: x.x0 - 3000, x1: x.x1 - 3000 })); // zoomed: the last shots in [0, 1000]
    const placed = shotLabels(b, 12, 2, 998);
    expectReadable(placed, 2, 998, 6);
    for (const p of placed) expect(b[p.index].x1).toBeGreaterThan(2);
    expect(placed.some((p) => /^(Shot )?32$/.test(p.text))).toBe(true);
    expect(placed.some((p) => p.text === 'Shot 1' || p.text === '1')).toBe(false);
  });

  it('keeps a label at the edge whole (no "aptions")', () => {
    const [p] = placeLabels([{ at: 3, text: 'captions' }], 12, 2, 300);
    expect(p.left).toBe(2);
    expect(p.text).toBe('captions');
    expect(placeLabels([{ at: 3, text: 'captions' }], 12, 0, 20)).toEqual([]); // too narrow: dropped, not cut
  });

  it('keeps the most important labels first', () => {
    const items = Array.from({ length: 40 }, (_, i) => ({ at: i * 5, text: `${i}`, priority: i === 17 ? 2 : 0 }));
    const placed = placeLabels(items, 11, 0, 200, 3);
    expect(placed.some((p) => p.index === 17)).toBe(true);
    expectReadable(placed, 0, 200, 3);
    expect(textWidth('12', 11)).toBeGreaterThan(10);
  });
});

describe('chunk names', () => {
  const table = buildChunkTable({
    globalCaptionTokens: 3,
    shots: [
      { captionTokens: 2, frames: 3 },
      { captionTokens: 2, frames: 5 },
    ],
    tokensPerFrame: 4,
    chunkFrames: 2,
  });
  it('names captions and frames the same way for the graph and teaching mode', () => {
    const name = chunkNamer(table.chunks, 4);
    expect(table.chunks.map((_, i) => name(i))).toEqual([
      'Global caption',
      'Shot 1 caption',
      'Shot 1 · frames 1–2',
      'Shot 1 · frame 3',
      'Shot 2 caption',
      'Shot 2 · frames 1–2',
      'Shot 2 · frames 3–4',
      'Shot 2 · frame 5',
    ]);
    expect(chunkNamer(table.chunks, 4, (s) => s + 3)(6)).toBe('Shot 4 · frames 3–4');
    expect(
      ['Global caption', 'Shot 2 caption', 'Shot 12 · frames 3–4', 'Shot 2 · frame 5', 'nonsense'].map(shortChunkName),
    ).toEqual(['G', 'T2', '12·3', '2·5', '']);
  });
});
