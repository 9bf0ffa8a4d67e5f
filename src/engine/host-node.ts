/**
 * Node host: a `GPU` from Dawn (the `webgpu` package) with the WebGPU globals installed.
 *
 * On a machine with no GPU driver, Vulkan is pointed at SwiftShader from Debian's Chromium
 * package (before Dawn starts its Vulkan loader), so the same WGSL runs on the CPU. Set
 * MOC_VULKAN_ICD to force an ICD file; VK_ICD_FILENAMES / VK_DRIVER_FILES set by the caller win.
 */
import { existsSync, readdirSync } from 'node:fs';
import { NoAdapterError } from './errors.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

let cached: GPU | null = null;

/** A hardware Vulkan driver with a device to drive: NVIDIA's ICD, or a Mesa ICD plus /dev/dri. */
function hasNativeVulkanDriver(): boolean {
  const icds = ICD_DIRS.filter((d) => existsSync(d)).flatMap((d) => readdirSync(d));
  if (icds.some((f) => /nvidia/i.test(f))) return true;
  return existsSync('/dev/dri') && icds.some((f) => f.endsWith('.json') && !/swiftshader|lvp|mock/i.test(f));
}

/** Which Vulkan ICD the process will use: 'env' (caller's), 'native' or 'swiftshader'. */
export function chooseVulkanIcd(): 'env' | 'native' | 'swiftshader' {
  if (process.env.MOC_VULKAN_ICD) {
    process.env.VK_ICD_FILENAMES = process.env.MOC_VULKAN_ICD;
    return 'env';
  }
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return 'env';
  if (hasNativeVulkanDriver()) return 'native';
  if (existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    return 'swiftshader';
  }
  return 'native';
}

/**
 * Returns Dawn's GPU object for this process (created once).
 * @throws NoAdapterError when the `webgpu` package cannot be loaded.
 */
export async function nodeGpu(): Promise<GPU> {
  if (cached) return cached;
  chooseVulkanIcd();
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new NoAdapterError(`cannot load the 'webgpu' package (run npm ci): ${(e as Error).message.split('\n')[0]}`);
  }
  Object.assign(globalThis, mod.globals);
  cached = mod.create(['backend=vulkan']);
  return cached;
}
