/** The characters of each shot, the earlier shots that show them, and the share of routing that lands there. */
import { describe, expect, it } from 'vitest';
import type { LayerTrace, StepTrace } from '../../src/model/api.ts';
import { buildChunkTable } from '../../src/model/layout.ts';
import { isMandatory } from '../../src/model/moc-reference.ts';
import { scoreProfile } from '../../src/viz/dag-layout.ts';
import { memoryShare, memoryShotSet, memoryShots, shotCharacters } from '../../src/viz/shot-memory.ts';

describe('shotCharacters', () => {
  it('reads "character N" in any case, each once, ascending', () => {
    expect(shotCharacters('Character 1 bounces in the meadow, wide.')).toEqual([1]);
    expect(
      shotCharacters('Character 3 spins and character 1 moves left and character 2 bounces on the beach, wide.'),
    ).toEqual([1, 2, 3]);
    expect(shotCharacters('CHARACTER 12 stays and Character 12 grows in the snow, close-up.')).toEqual([12]);
    expect(shotCharacters('Nobody is on the beach, close-up.')).toEqual([]);
    expect(shotCharacters('')).toEqual([]);
    // a number must follow, as a whole word
    expect(shotCharacters('The characters 1 and character two meet; character 7b waits.')).toEqual([]);
  });
});

describe('memoryShots', () => {
  const board = [
    'Character 1 bounces in the meadow, wide.', // 0
    'Character 2 moves right on the beach, wide.', // 1
    'Nobody is on the beach, close-up.', // 2
    'Character 1 stays and character 2 bounces in the meadow, wide.', // 3
    'Character 3 spins and character 1 moves left in the snow, wide.', // 4
  ];

  it('lists, per character of a shot, the earlier shots that show it', () => {
    expect(memoryShots(board, 3)).toEqual([
      { character: 1, shots: [0] },
      { character: 2, shots: [1] },
    ]);
    // character 3 is new in shot 4; character 1 was in shots 0 and 3
    expect(memoryShots(board, 4)).toEqual([
      { character: 1, shots: [0, 3] },
      { character: 3, shots: [] },
    ]);
    expect(memoryShotSet(memoryShots(board, 4))).toEqual([0, 3]);
    expect(memoryShotSet(memoryShots(board, 3))).toEqual([0, 1]);
  });

  it('gives nothing for an empty shot, and [] for the first shot and for a character never seen before', () => {
    expect(memoryShots(board, 2)).toEqual([]);
    expect(memoryShots(board, 0)).toEqual([{ character: 1, shots: [] }]);
    expect(memoryShots(board, 1)).toEqual([{ character: 2, shots: [] }]);
    expect(memoryShots(board, 9)).toEqual([]); // no such shot
  });

  it('follows the order of the shots: later shots are not memory', () => {
    const reordered = [board[3], board[1], board[0]];
    expect(memoryShots(reordered, 0)).toEqual([
      { character: 1, shots: [] },
      { character: 2, shots: [] },
    ]);
    expect(memoryShots(reordered, 2)).toEqual([{ character: 1, shots: [0] }]);
    expect(memoryShots(reordered, 1)).toEqual([{ character: 2, shots: [0] }]);
  });
});

describe('memoryShare', () => {
  // global caption (2 tokens); shot 0: caption + 2 frames; shot 1: caption + 1 frame; shot 2: caption + 2 frames; 2 tokens a frame
  const table = buildChunkTable({
    globalCaptionTokens: 2,
    shots: [
      { captionTokens: 1, frames: 2 },
      { captionTokens: 1, frames: 1 },
      { captionTokens: 1, frames: 2 },
    ],
    tokensPerFrame: 2,
    chunkFrames: 1,
  });
  // chunks: 0 global, 1 T0, 2-3 frames of shot 0, 4 T1, 5 frame of shot 1, 6 T2, 7-8 frames of shot 2
  const C = table.start.length;

  /** A layer whose routes are given as [head, query chunk, key chunk, query tokens]; scores all 0. */
  function layer(H: number, routes: Array<[number, number, number, number]>): LayerTrace {
    const start = new Uint32Array(H * C + 1);
    const rows = Array.from({ length: H * C }, () => [] as Array<[number, number]>);
    for (const [h, a, b, n] of routes) rows[h * C + a].push([b, n]);
    const to: number[] = [];
    const count: number[] = [];
    rows.forEach((row, r) => {
      row.sort((x, y) => x[0] - y[0]).forEach(([b, n]) => (to.push(b), count.push(n)));
      start[r + 1] = to.length;
    });
    const mandatory = new Uint8Array(C * C);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) mandatory[a * C + b] = isMandatory(table, a, b) ? 1 : 0;
    return {
      H,
      C,
      D: 1,
      routes: { start, to: Uint16Array.from(to), count: Uint16Array.from(count) },
      mandatory,
      qMean: new Float32Array(H * C),
      desc: new Float32Array(H * C),
      sparsity: new Float32Array(H),
    };
  }

  // top-1 routing, two heads, two layers; chunk 7 (shot 2, frame 1; 2 tokens):
  //   layer 0: head 0 → one token to chunk 2 (shot 0), one to chunk 5 (shot 1); head 1 → both to chunk 3 (shot 0)
  //   layer 1: head 0 → both to chunk 5; head 1 → both to chunk 5
  const trace: StepTrace = {
    step: 0,
    chunks: table,
    layers: [
      layer(2, [
        [0, 7, 2, 1],
        [0, 7, 5, 1],
        [1, 7, 3, 2],
        [0, 8, 5, 2],
        [1, 8, 5, 2],
        [0, 5, 2, 2],
        [1, 5, 3, 2],
      ]),
      layer(2, [
        [0, 7, 5, 2],
        [1, 7, 5, 2],
        [0, 8, 2, 2],
        [1, 8, 2, 2],
        [0, 5, 3, 2],
        [1, 5, 3, 2],
      ]),
    ],
  };
  const share = (a: number, shots: number[], l = -1, h = -1, causal = true) =>
    memoryShare(table, scoreProfile(trace, a, { layer: l, head: h }, 1, causal), shots);

  it('counts the share of picks landing in the shots, over the selected layers and heads', () => {
    // all: 8 picks, 3 in shot 0
    expect(share(7, [0]).routed).toBeCloseTo(3 / 8, 12);
    expect(share(7, [0, 1]).routed).toBeCloseTo(1, 12);
    expect(share(7, [1]).routed).toBeCloseTo(5 / 8, 12);
    expect(share(7, [0], 0).routed).toBeCloseTo(3 / 4, 12);
    expect(share(7, [0], 0, 0).routed).toBeCloseTo(1 / 2, 12);
    expect(share(7, [0], 0, 1).routed).toBeCloseTo(1, 12);
    expect(share(7, [0], 1).routed).toBe(0);
    expect(share(8, [0]).routed).toBeCloseTo(1 / 2, 12);
    expect(share(7, []).routed).toBe(0);
  });

  it('compares with uniform routing: the shots’ frames over the earlier frames of other shots', () => {
    expect(share(7, [0]).uniform).toBeCloseTo(2 / 3, 12); // candidates 2, 3, 5
    expect(share(7, [1]).uniform).toBeCloseTo(1 / 3, 12);
    expect(share(8, [0]).uniform).toBeCloseTo(2 / 3, 12); // chunk 7 is its own shot: mandatory, not a candidate
    expect(share(5, [0]).uniform).toBe(1);
    // without causality the later shot's frames are candidates too
    expect(share(5, [0], -1, -1, false).uniform).toBeCloseTo(2 / 4, 12);
    expect(share(7, [0], -1, -1, false).uniform).toBeCloseTo(2 / 3, 12);
  });

  it('has no share where there is nothing to share', () => {
    // shot 0 has no earlier frames: no candidates, no picks
    expect(share(2, [0])).toEqual({ routed: null, uniform: null });
    // a caption's queries do not route
    expect(share(6, [0])).toEqual({ routed: null, uniform: null });
  });
});
