/** Run time estimates from earlier runs' ms/step, and telling a CPU fallback adapter (src/state/run-estimate.ts). */
import { describe, expect, it } from 'vitest';
import {
  MAX_STEP_RECORDS,
  STEP_TIMES_KEY,
  estimateRun,
  isCpuAdapter,
  loadStepRecords,
  recordStepTime,
  runShape,
  type StepRecord,
} from '../../src/state/run-estimate.ts';

/** A Storage stand-in over a Map. */
function memory(): Storage {
  const m = new Map<string, string>();
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) } as Storage;
}
const shape = { model: 'moc-tiny', adapter: 'SwiftShader', mode: 'moc', frames: 16, shots: 2 };
const rec = (patch: Partial<StepRecord>): StepRecord => ({ ...shape, msPerStep: 1000, at: 0, ...patch });

describe('run estimates', () => {
  it('knows nothing before a run, then uses the run of the same shape', () => {
    const store = memory();
    expect(estimateRun(shape, 10, loadStepRecords(store))).toBeNull();
    recordStepTime(rec({ msPerStep: 2000 }), store);
    expect(estimateRun(shape, 10, loadStepRecords(store))).toMatchObject({
      msPerStep: 2000,
      totalMs: 20_000,
      scaled: false,
    });
    recordStepTime(rec({ msPerStep: 1500 }), store); // the newer run of this shape replaces the older
    expect(loadStepRecords(store)).toHaveLength(1);
    expect(estimateRun(shape, 4, loadStepRecords(store))!.totalMs).toBe(6000);
  });

  it('scales the nearest record by frames, and never mixes models, adapters or modes', () => {
    const records = [
      rec({ frames: 8, msPerStep: 400 }),
      rec({ frames: 64, msPerStep: 9000 }),
      rec({ frames: 16, model: 'moc-base', msPerStep: 1 }),
      rec({ frames: 16, mode: 'dense', msPerStep: 1 }),
      rec({ frames: 16, adapter: 'GPU', msPerStep: 1 }),
    ];
    const e = estimateRun(shape, 2, records)!;
    expect(e.scaled).toBe(true);
    expect(e.from.frames).toBe(8); // 16/8 is nearer than 64/16
    expect(e.msPerStep).toBe(800);
    expect(e.totalMs).toBe(1600);
    expect(estimateRun({ ...shape, model: 'other' }, 2, records)).toBeNull();
  });

  it('keeps a bounded list and survives garbage in storage', () => {
    const store = memory();
    store.setItem(STEP_TIMES_KEY, '{not json');
    expect(loadStepRecords(store)).toEqual([]);
    store.setItem(STEP_TIMES_KEY, JSON.stringify([{ model: 1 }, rec({ msPerStep: -1 }), rec({})]));
    expect(loadStepRecords(store)).toHaveLength(1);
    for (let i = 1; i <= MAX_STEP_RECORDS + 5; i++) recordStepTime(rec({ frames: i }), store);
    expect(loadStepRecords(store)).toHaveLength(MAX_STEP_RECORDS);
    expect(loadStepRecords(store)[0].frames).toBe(MAX_STEP_RECORDS + 5);
    recordStepTime(rec({ msPerStep: Number.NaN }), store); // ignored
    expect(loadStepRecords(store)[0].frames).toBe(MAX_STEP_RECORDS + 5);
    const full = {
      getItem: () => null,
      setItem: () => {
        throw new Error('quota');
      },
    };
    expect(() => recordStepTime(rec({}), full)).not.toThrow();
  });

  it('reads the shape of the board as it stands', () => {
    const s = {
      board: { shots: [{ frames: 4 }, { frames: 12 }] },
      settings: { model: 'moc-tiny', attention: { mode: 'moc' } },
      model: { name: null },
      engine: { adapterName: 'SwiftShader' },
    };
    expect(runShape(s)).toEqual(shape);
  });
});

describe('CPU adapters', () => {
  const adapter = (patch: object) => ({
    vendor: '',
    architecture: '',
    device: '',
    description: '',
    isFallback: false,
    features: [],
    subgroupMatrixConfigs: [],
    limits: {} as never,
    ...patch,
  });
  it('tells SwiftShader and other CPU fallbacks from GPUs', () => {
    expect(isCpuAdapter(adapter({ vendor: 'google', architecture: 'swiftshader' }))).toBe(true);
    expect(isCpuAdapter(adapter({ isFallback: true }))).toBe(true);
    expect(isCpuAdapter(null, 'llvmpipe (LLVM 15.0.6, 256 bits)')).toBe(true);
    expect(isCpuAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' }))).toBe(false);
    expect(isCpuAdapter(adapter({ vendor: 'apple', architecture: 'metal-3' }), 'apple metal-3')).toBe(false);
    expect(isCpuAdapter(null, null)).toBe(false);
  });
});
