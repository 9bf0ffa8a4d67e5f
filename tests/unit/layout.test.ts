import { describe, expect, it } from 'vitest';
import {
  buildChunkTable,
  KIND_TEXT,
  KIND_VIDEO,
  layoutTokens,
  LayoutError,
  tableFromChunks,
  tableFromColumns,
  tokenChunks,
  tokenShots,
  validateChunks,
  type Chunk,
} from '../../src/model/layout.ts';
import { CASES } from '../helpers/moc-cases.ts';

describe('buildChunkTable', () => {
  it('lays out global caption, then per shot its caption and its frames (LCT order)', () => {
    const t = buildChunkTable({
      globalCaptionTokens: 5,
      shots: [
        { captionTokens: 5, frames: 3 },
        { captionTokens: 4, frames: 2 },
      ],
      tokensPerFrame: 35,
      chunkFrames: 2,
    });
    const want: Chunk[] = [
      { start: 0, end: 5, kind: 'text', shot: -1 },
      { start: 5, end: 10, kind: 'text', shot: 0 },
      { start: 10, end: 80, kind: 'video', shot: 0 }, // frames 0-1
      { start: 80, end: 115, kind: 'video', shot: 0 }, // frame 2: the short last chunk of shot 0
      { start: 115, end: 119, kind: 'text', shot: 1 },
      { start: 119, end: 189, kind: 'video', shot: 1 }, // frames 0-1 of shot 1, not 2-3 of shot 0
    ];
    expect(t.chunks).toEqual(want);
    expect(t.n).toBe(189);
    expect([...t.start]).toEqual(want.map((c) => c.start));
    expect([...t.end]).toEqual(want.map((c) => c.end));
    expect([...t.shot]).toEqual([-1, 0, 0, 0, 1, 1]);
    expect([...t.kind]).toEqual([KIND_TEXT, KIND_TEXT, KIND_VIDEO, KIND_VIDEO, KIND_TEXT, KIND_VIDEO]);
  });

  it('omits empty captions and handles shots without frames', () => {
    const t = buildChunkTable({
      globalCaptionTokens: 0,
      shots: [
        { captionTokens: 0, frames: 1 },
        { captionTokens: 3, frames: 0 },
      ],
      tokensPerFrame: 7,
      chunkFrames: 1,
    });
    expect(t.chunks).toEqual([
      { start: 0, end: 7, kind: 'video', shot: 0 },
      { start: 7, end: 10, kind: 'text', shot: 1 },
    ]);
  });

  for (const c of CASES) {
    it(`${c.name}: valid, video chunks within one shot, token arrays agree`, () => {
      const t = c.table;
      expect(() => validateChunks(t, t.n)).not.toThrow();
      const chunkOf = tokenChunks(t);
      const shotOf = tokenShots(t);
      expect(chunkOf.length).toBe(t.n);
      for (let i = 0; i < t.n; i++) {
        const ch = t.chunks[chunkOf[i]];
        expect(i >= ch.start && i < ch.end).toBe(true);
        expect(shotOf[i]).toBe(ch.shot);
      }
      for (const ch of t.chunks) if (ch.kind === 'video') expect(ch.shot).toBeGreaterThanOrEqual(0);
    });
  }

  it('chunkFrames 1 and 2 give one chunk per frame and one per frame pair', () => {
    const base = { globalCaptionTokens: 5, shots: [{ captionTokens: 5, frames: 5 }], tokensPerFrame: 35 };
    const one = buildChunkTable({ ...base, chunkFrames: 1 });
    const two = buildChunkTable({ ...base, chunkFrames: 2 });
    expect(one.chunks.filter((c) => c.kind === 'video').map((c) => c.end - c.start)).toEqual([35, 35, 35, 35, 35]);
    expect(two.chunks.filter((c) => c.kind === 'video').map((c) => c.end - c.start)).toEqual([70, 70, 35]);
    expect(one.n).toBe(layoutTokens({ ...base, chunkFrames: 1 }));
  });

  it('refuses bad descriptions', () => {
    const ok = { globalCaptionTokens: 5, shots: [{ captionTokens: 5, frames: 2 }], tokensPerFrame: 35, chunkFrames: 1 };
    expect(() => buildChunkTable({ ...ok, chunkFrames: 0 })).toThrow(/chunkFrames must be an integer ≥ 1/);
    expect(() => buildChunkTable({ ...ok, tokensPerFrame: 2.5 })).toThrow(/tokensPerFrame/);
    expect(() => buildChunkTable({ ...ok, shots: [{ captionTokens: -1, frames: 2 }] })).toThrow(
      /shots\[0\]\.captionTokens/,
    );
    expect(() => buildChunkTable({ ...ok, globalCaptionTokens: -5 })).toThrow(LayoutError);
  });
});

describe('validateChunks', () => {
  const good: Chunk[] = [
    { start: 0, end: 5, kind: 'text', shot: -1 },
    { start: 5, end: 40, kind: 'video', shot: 0 },
    { start: 40, end: 75, kind: 'video', shot: 0 },
  ];
  const bad = (chunks: Chunk[], N: number, re: RegExp): void => {
    let err: unknown;
    try {
      validateChunks(tableFromChunks(chunks), N);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LayoutError);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain('\n');
  };

  it('accepts a good table', () => expect(() => validateChunks(tableFromChunks(good), 75)).not.toThrow());
  it('refuses a gap', () =>
    bad([good[0], { ...good[1], start: 6 }, good[2]], 75, /gap before chunk 1: tokens \[5, 6\)/));
  it('refuses an overlap', () =>
    bad([good[0], good[1], { ...good[2], start: 39 }], 75, /chunk 2 \[39, 75\) overlaps chunk 1/));
  it('refuses a table that does not start at 0', () =>
    bad([{ ...good[0], start: 1 }, good[1], good[2]], 75, /gap before chunk 0/));
  it('refuses chunks beyond N', () => bad(good, 70, /chunk 2 \[40, 75\) exceeds N = 70/));
  it('refuses a table that stops short of N', () => bad(good, 80, /cover tokens \[0, 75\) but N = 80/));
  it('refuses an empty chunk', () =>
    bad([good[0], { ...good[1], end: 5 }, { ...good[2], start: 5 }], 75, /chunk 1 \[5, 5\) is empty/));
  it('refuses an empty table', () => bad([], 0, /empty/));
  it('refuses video in no shot', () =>
    bad([good[0], { ...good[1], shot: -1 }, good[2]], 75, /chunk 1 is video with shot -1/));
  it('refuses shots below -1', () => bad([{ ...good[0], shot: -2 }, good[1], good[2]], 75, /chunk 0 has shot -2/));

  it('tableFromColumns refuses a bad kind and ragged columns', () => {
    const i = (xs: number[]) => Int32Array.from(xs);
    expect(() => tableFromColumns(i([0]), i([5]), i([-1]), i([2]))).toThrow(/chunk 0 has kind 2/);
    expect(() => tableFromColumns(i([0, 5]), i([5]), i([-1]), i([0]))).toThrow(/differ in length/);
    const t = tableFromColumns(i([0, 5]), i([5, 40]), i([-1, 0]), i([0, 1]));
    expect(t.chunks[1]).toEqual({ start: 5, end: 40, kind: 'video', shot: 0 });
    expect(t.n).toBe(40);
  });
});
