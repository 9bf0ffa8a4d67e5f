/** One engine per test file, on Dawn (SwiftShader in CI, the real GPU where there is one). */
import { Engine } from '../../src/engine/engine.ts';
import { nodeGpu } from '../../src/engine/host-node.ts';

let enginePromise: Promise<Engine> | null = null;

export function testEngine(): Promise<Engine> {
  enginePromise ??= nodeGpu().then((gpu) => Engine.create(gpu));
  return enginePromise;
}

/** Storage types to test: f32 always, f16 where the adapter has `shader-f16`. */
export function storageTypes(eng: Engine): Array<'f32' | 'f16'> {
  return eng.features.f16 ? ['f32', 'f16'] : ['f32'];
}
