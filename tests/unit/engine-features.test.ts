// Which optional features the engine asks for (a fake adapter stands in for Dawn), how it reports
// the adapter's cooperative-matrix shapes, and the Dawn creation flags with their opt-out.
import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { DAWN_FEATURE_FLAGS, dawnFlags } from '../../src/engine/host-node.ts';

const SHAPE = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 };

/** A GPU whose one adapter reports `features`; records what requestDevice was asked for. */
function fakeGpu(features: string[], info: Record<string, unknown>) {
  const asked: string[][] = [];
  const limits = new Proxy({}, { get: () => 1024 });
  const device = {
    limits,
    lost: new Promise(() => {}),
    addEventListener: () => {},
    destroy: () => {},
    queue: {},
  };
  const adapter = {
    features: new Set(features),
    limits,
    info,
    requestDevice: async (d: { requiredFeatures: string[] }) => {
      asked.push([...d.requiredFeatures]);
      return device;
    },
  };
  return { gpu: { requestAdapter: async () => adapter } as unknown as GPU, asked };
}

describe('engine features', () => {
  it('requests f16 and subgroup matrices when the adapter has them, and reports the shapes', async () => {
    const { gpu, asked } = fakeGpu(['shader-f16', 'chromium-experimental-subgroup-matrix', 'timestamp-query'], {
      vendor: 'nvidia',
      subgroupMatrixConfigs: [SHAPE],
    });
    const eng = await Engine.create(gpu);
    expect(asked[0].sort()).toEqual(['chromium-experimental-subgroup-matrix', 'shader-f16', 'timestamp-query']);
    expect(eng.features).toEqual({ f16: true, subgroups: false, timestamp: true, subgroupMatrix: true });
    expect(eng.adapter.subgroupMatrixConfigs).toEqual([SHAPE]);
    expect(eng.capabilities().join('\n')).toContain('subgroupMatrixConfigs: f16->f32 16x16x16');
  });

  it('asks for nothing the adapter lacks and honours disable', async () => {
    const { gpu, asked } = fakeGpu(['shader-f16', 'chromium-experimental-subgroup-matrix'], { vendor: 'x' });
    const eng = await Engine.create(gpu, { disable: ['subgroupMatrix'] });
    expect(asked[0]).toEqual(['shader-f16']);
    expect(eng.features.subgroupMatrix).toBe(false);
    expect(eng.adapter.subgroupMatrixConfigs).toEqual([]);
    expect(eng.capabilities().join('\n')).toContain('subgroupMatrixConfigs: none');
  });
});

describe('dawn flags', () => {
  it('enables the f16 and unsafe-API toggles by default', () => {
    expect(dawnFlags({})).toEqual(['backend=vulkan', ...DAWN_FEATURE_FLAGS]);
    expect(dawnFlags({}).join(' ')).toContain('enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis');
  });
  it('MOC_GPU_FEATURES=off opts out; another value is refused in one line', () => {
    expect(dawnFlags({ MOC_GPU_FEATURES: 'off' })).toEqual(['backend=vulkan']);
    expect(() => dawnFlags({ MOC_GPU_FEATURES: 'maybe' })).toThrow(/MOC_GPU_FEATURES must be 'on' or 'off'/);
  });
});
