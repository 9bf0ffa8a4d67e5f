/**
 * Node host: a `GPU` from Dawn (the `webgpu` package) with the WebGPU globals installed.
 *
 * On a machine with no GPU driver, Vulkan is pointed at SwiftShader from Debian's Chromium
 * package (before Dawn starts its Vulkan loader), so the same WGSL runs on the CPU. Set
 * MOC_VULKAN_ICD to force an ICD file; VK_ICD_FILENAMES / VK_DRIVER_FILES set by the caller win.
 * MOC_GPU_FEATURES=off creates Dawn without the feature toggles of DAWN_FEATURE_FLAGS.
 */
import { existsSync, readdirSync } from 'node:fs';
import { NoAdapterError } from './errors.ts';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

let cached: GPU | null = null;

/**
 * Dawn toggles asked for at creation unless MOC_GPU_FEATURES=off: `vulkan_enable_f16_on_nvidia`
 * lifts Dawn's f16 blocklist for NVIDIA drivers below 615.71, `allow_unsafe_apis` exposes the
 * experimental `chromium-experimental-subgroup-matrix` feature (cooperative matrices), and
 * without `timestamp_quantization` timestamps resolve short kernels. They only make features
 * visible; the engine still requests a feature only when the adapter reports it.
 */
export const DAWN_FEATURE_FLAGS = [
  'enable-dawn-features=vulkan_enable_f16_on_nvidia,allow_unsafe_apis',
  'disable-dawn-features=timestamp_quantization',
] as const;

/** The flags nodeGpu() creates Dawn with, given the environment (MOC_GPU_FEATURES=off opts out). */
export function dawnFlags(env: Record<string, string | undefined> = process.env): string[] {
  const setting = (env.MOC_GPU_FEATURES ?? 'on').trim().toLowerCase();
  if (setting !== 'on' && setting !== 'off') {
    throw new NoAdapterError(`MOC_GPU_FEATURES must be 'on' or 'off', not '${setting.slice(0, 20)}'`);
  }
  return setting === 'off' ? ['backend=vulkan'] : ['backend=vulkan', ...DAWN_FEATURE_FLAGS];
}

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
  const flags = dawnFlags();
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new NoAdapterError(`cannot load the 'webgpu' package (run npm ci): ${(e as Error).message.split('\n')[0]}`);
  }
  Object.assign(globalThis, mod.globals);
  cached = mod.create(flags);
  return cached;
}
