/**
 * Property-based fuzzing (fast-check) of the storyboard schema: arbitrary JSON values and texts,
 * and near-valid storyboards with one field broken, give a valid Storyboard or a one-line
 * StoryboardError — nothing else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_SHOTS,
  MAX_SHOT_FRAMES,
  StoryboardError,
  parseStoryboard,
  parseStoryboardJson,
  type Storyboard,
} from '../../src/model/storyboard.ts';

function validOrRefused(f: () => Storyboard): 'ok' | 'refused' {
  let board: Storyboard;
  try {
    board = f();
  } catch (e) {
    if (!(e instanceof StoryboardError))
      throw new Error(`expected StoryboardError, got ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    expect(e.message).toMatch(/^storyboard/);
    expect(e.message).not.toMatch(/[\n\r\u2028\u2029]/);
    return 'refused';
  }
  // what comes back is a storyboard the rest of the studio can rely on
  expect(board.version).toBe(1);
  expect(typeof board.globalCaption).toBe('string');
  expect(board.shots.length).toBeGreaterThanOrEqual(1);
  expect(board.shots.length).toBeLessThanOrEqual(MAX_SHOTS);
  for (const s of board.shots) {
    expect(typeof s.caption).toBe('string');
    expect(Number.isInteger(s.frames) && s.frames >= 1 && s.frames <= MAX_SHOT_FRAMES).toBe(true);
    expect(Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= 0xffffffff).toBe(true);
  }
  return 'ok';
}

const shot = fc.record({
  caption: fc.string({ maxLength: 40 }),
  frames: fc.integer({ min: 1, max: MAX_SHOT_FRAMES }),
  seed: fc.integer({ min: 0, max: 0xffffffff }),
});
const board = fc.record({
  version: fc.constant(1),
  globalCaption: fc.string({ maxLength: 40 }),
  shots: fc.array(shot, { minLength: 1, maxLength: MAX_SHOTS }),
});
const weird = fc.oneof(
  fc.anything(),
  fc.constantFrom(0, -1, 1.5, 65, 2 ** 32, NaN, Infinity, null, '3', [], {}, '\u2028'),
);

describe('fuzz: storyboard schema', () => {
  it('valid storyboards parse, as values and as JSON text', () => {
    fc.assert(
      fc.property(board, (b) => {
        expect(validOrRefused(() => parseStoryboard(b))).toBe('ok');
        expect(parseStoryboardJson(JSON.stringify(b))).toEqual(b);
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary values and JSON texts give a storyboard or one line', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => void validOrRefused(() => parseStoryboard(v))),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), (t) => void validOrRefused(() => parseStoryboardJson(t))),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200, unit: 'binary' }),
        (t) => void validOrRefused(() => parseStoryboardJson(t)),
      ),
      { numRuns: 1000 },
    );
  });

  it('a storyboard with one field replaced gives a storyboard or one line', () => {
    const path = fc.oneof(
      fc.constantFrom(['version'], ['globalCaption'], ['shots']),
      fc.tuple(fc.constant('shots'), fc.nat(3), fc.constantFrom('caption', 'frames', 'seed', 'extra')),
    );
    fc.assert(
      fc.property(board, path, weird, (b, p, value) => {
        const copy = JSON.parse(JSON.stringify(b)) as Record<string, unknown>;
        let at: Record<string | number, unknown> = copy;
        for (const k of p.slice(0, -1)) {
          if (typeof at[k] !== 'object' || at[k] === null) return;
          at = at[k] as Record<string | number, unknown>;
        }
        at[p[p.length - 1]] = value;
        validOrRefused(() => parseStoryboard(copy));
        let text: string | undefined;
        try {
          text = JSON.stringify(copy);
        } catch {
          return; // BigInt and the like: not JSON
        }
        if (text !== undefined) validOrRefused(() => parseStoryboardJson(text));
      }),
      { numRuns: 1000 },
    );
  });
});
