import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.ts';
import { DeviceLostError } from '../../src/engine/errors.ts';
import { nodeGpu } from '../../src/engine/host-node.ts';
import { binary } from '../../src/engine/kernels/elementwise.ts';
import { testEngine } from '../helpers/gpu.ts';

// The engine records dispatches into one command encoder and one compute pass until a flush;
// these check that this batching never changes what the kernels compute.
describe('engine recording order', () => {
  it('an upload into a recycled buffer does not reach commands recorded before it', async () => {
    const eng = await testEngine();
    const a = eng.upload(new Float32Array([1, 2, 3, 4]), [4], 'test.a');
    const sum = await binary(eng, 'add', a, a); // recorded, not submitted
    a.dispose(); // its buffer goes back to the pool while `sum`'s command still reads it
    const b = eng.upload(new Float32Array([10, 20, 30, 40]), [4], 'test.b'); // same size: same buffer
    expect(b.buffer).toBe(a.buffer);
    expect([...((await eng.read(sum)) as Float32Array)]).toEqual([2, 4, 6, 8]);
    [sum, b].forEach((t) => t.dispose());
  });

  it("dispatches in one pass see each other's writes; uniforms and bind groups are reused", async () => {
    const eng = await testEngine();
    const x = eng.upload(new Float32Array([1, 2, 3]), [3], 'test.x');
    const before = { ...eng.stats };
    let acc = await binary(eng, 'add', x, x);
    for (let i = 0; i < 5; i++) {
      const next = await binary(eng, 'add', acc, x); // reads what the previous dispatch wrote
      acc.dispose();
      acc = next;
    }
    expect([...((await eng.read(acc)) as Float32Array)]).toEqual([7, 14, 21]);
    const after = eng.stats;
    expect(after.dispatches - before.dispatches).toBe(6);
    expect(after.submits - before.submits).toBeLessThanOrEqual(2);
    // same shapes, same params: one uniform at most, and bind groups repeat as the pool cycles buffers
    expect(after.uniforms - before.uniforms).toBeLessThanOrEqual(1);
    expect(after.bindGroups - before.bindGroups).toBeLessThan(6);
    [x, acc].forEach((t) => t.dispose());
  });

  it('readbacks in flight when the device is lost reject with DeviceLostError, not a read error', async () => {
    const eng = await Engine.create(await nodeGpu()); // its own device: this test destroys it
    const t = eng.upload(new Float32Array(1 << 18), [1 << 18], 'test.big');
    const reads = [eng.read(t), eng.read(t), eng.read(t)];
    eng.device.destroy();
    for (const r of reads) await expect(r).rejects.toBeInstanceOf(DeviceLostError);
  });
});
