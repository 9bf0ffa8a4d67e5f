/**
 * WGSL sources. Each kernel's text is `preamble(dtype) + common.wgsl + <kernel>.wgsl`; the only
 * generated part is the preamble, which switches the storage type between f32 and f16.
 * Vite's `?raw` loads the files in the browser and in Vitest; bin/moc.mjs installs an equivalent
 * loader for Node.
 */
import common from '../../shaders/common.wgsl?raw';

export type StorageType = 'f32' | 'f16';

export function preamble(storage: StorageType): string {
  return storage === 'f16' ? 'enable f16;\nalias T = f16;\n' : 'alias T = f32;\n';
}

/** Full WGSL for a kernel source with the given storage type. */
export function wgsl(kernelSource: string, storage: StorageType = 'f32'): string {
  return `${preamble(storage)}${common}\n${kernelSource}`;
}
