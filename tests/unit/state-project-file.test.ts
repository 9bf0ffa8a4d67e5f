/** The project file (src/state/project-file.ts): a project round-trips whole, and a bad file is refused with its first problem named. */
import { describe, expect, it } from 'vitest';
import {
  PROJECT_FORMAT,
  ProjectFileError,
  readProject,
  writeProject,
  type Project,
} from '../../src/state/project-file.ts';
import { DEFAULT_SETTINGS, type TakeMeta } from '../../src/state/types.ts';

const meta = (id: string, shotId: string, createdAt: number): TakeMeta => ({
  id,
  shotId,
  createdAt,
  caption: 'Character 1 spins.',
  globalCaption: 'Character 1 is a red star.',
  seed: 4_294_967_295,
  frames: 2,
  width: 2,
  height: 1,
  model: 'moc-tiny',
  steps: 3,
  guidance: 3,
  attention: { mode: 'moc', topK: 1, chunkFrames: 1, causal: true },
  runMs: 10,
  sparsity: 0.5,
});
const pixels = (fill: number) => new Uint8ClampedArray(2 * 2 * 1 * 4).fill(fill);

function project(): Project {
  const trace = {
    step: 2,
    chunks: { shot: new Int32Array([0, 1]), start: new Int32Array([0, 4]) },
    layers: [{ sparsity: new Float32Array([0.25, 0.75]), picks: new Uint32Array([1, 2, 3]) }],
  };
  return {
    name: 'Stars',
    board: {
      board: {
        version: 1,
        globalCaption: 'Character 1 is a red star.',
        shots: [
          { caption: 'Character 1 spins.', frames: 2, seed: 4_294_967_295 },
          { caption: 'Character 1 grows.', frames: 2, seed: 2 },
        ],
      },
      shotIds: ['a', 'b'],
    },
    settings: { ...DEFAULT_SETTINGS, steps: 7, guidance: 2.5 },
    takes: [
      { meta: meta('t1', 'a', 1), pixels: pixels(10) },
      { meta: meta('t2', 'a', 2), pixels: pixels(20) },
      { meta: meta('t3', 'b', 3), pixels: pixels(30) },
    ],
    chosen: { a: 't1', b: 't3' },
    routing: { traces: [trace as never], shotIds: ['a', 'b'], captions: ['Character 1 spins.', 'Character 1 grows.'] },
  };
}

describe('project file', () => {
  it('round-trips board, settings, versions with their pixels, the kept ones and routing traces', () => {
    const p = project();
    const text = writeProject(p, 123);
    expect(JSON.parse(text).format).toBe(PROJECT_FORMAT);
    const back = readProject(text);
    expect(back).toEqual(p);
    expect(back.takes[1].pixels).toBeInstanceOf(Uint8ClampedArray);
    const layer = (back.routing!.traces[0] as unknown as { layers: Array<{ sparsity: Float32Array }> }).layers[0];
    expect(layer.sparsity).toBeInstanceOf(Float32Array);
    expect([...layer.sparsity]).toEqual([0.25, 0.75]);
  });

  it('keeps a view of a larger buffer to its own bytes', () => {
    const p = project();
    const big = new Uint8ClampedArray(64).fill(99);
    p.takes[0].pixels = big.subarray(8, 24);
    expect(readProject(writeProject(p)).takes[0].pixels).toEqual(new Uint8ClampedArray(16).fill(99));
  });

  it('falls back to the newest version when the kept one is missing, and leaves out versions of shots not on the board', () => {
    const p = project();
    p.chosen = { a: 'gone' };
    p.takes.push({ meta: meta('t9', 'zzz', 9), pixels: pixels(1) });
    const back = readProject(writeProject(p));
    expect(back.chosen).toEqual({ a: 't2', b: 't3' });
    expect(back.takes.map((t) => t.meta.id)).toEqual(['t1', 't2', 't3']);
  });

  it('refuses what is not a project file, naming the problem', () => {
    const bad = (mutate: (raw: Record<string, unknown>) => void): string => {
      const raw = JSON.parse(writeProject(project())) as Record<string, unknown>;
      mutate(raw);
      try {
        readProject(JSON.stringify(raw));
      } catch (e) {
        expect(e).toBeInstanceOf(ProjectFileError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(() => readProject('{nope')).toThrow(/not JSON/);
    expect(bad((r) => (r.format = 'other'))).toMatch(/not a MoC Studio project file/);
    expect(bad((r) => (r.version = 99))).toMatch(/version 99/);
    expect(bad((r) => ((r.board as { shots: unknown[] }).shots = []))).toMatch(/storyboard is invalid/);
    expect(bad((r) => (r.shotIds = ['a', 'a']))).toMatch(/shotIds/);
    expect(bad((r) => ((r.takes as Array<{ meta: { frames: number } }>)[0].meta.frames = 3))).toMatch(
      /version t1 has 16 bytes of pixels, not 3×1×2×4/,
    );
    expect(bad((r) => ((r.takes as Array<{ pixels: { $typed: string } }>)[0].pixels.$typed = 'BigInt64Array'))).toMatch(
      /unknown type/,
    );
  });
});
