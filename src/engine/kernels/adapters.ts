/**
 * Adapter kinds that kernels specialise for, from the plain-data adapter summary.
 */
import type { AdapterSummary } from '../engine.ts';

/**
 * SwiftShader: Vulkan on the CPU (Chromium's fallback adapter; Node's when there is no GPU).
 * Chromium 156 reports vendor 'google', architecture 'swiftshader' and an empty device and
 * description; Dawn in Node adds a 'swiftshader-device-…' device and a 'SwiftShader driver …'
 * description. Any of the three naming it is enough.
 */
export function isSwiftShader(a: Pick<AdapterSummary, 'architecture' | 'device' | 'description'>): boolean {
  return /swiftshader/i.test(`${a.architecture} ${a.device} ${a.description}`);
}
