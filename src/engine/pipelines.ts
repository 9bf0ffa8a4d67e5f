/**
 * Compute pipelines cached by kernel name + override constants + generated-source variant.
 * Creation runs inside a validation error scope so a bad shader fails with its compiler message.
 */
import { GpuValidationError } from './errors.ts';

export type Constants = Record<string, number>;

export function pipelineKey(name: string, constants: Constants, variant = ''): string {
  const parts = Object.keys(constants)
    .sort()
    .map((k) => `${k}=${constants[k]}`);
  return `${name}|${variant}|${parts.join(',')}`;
}

export class PipelineCache {
  private readonly cache = new Map<string, Promise<GPUComputePipeline>>();
  private readonly modules = new Map<string, GPUShaderModule>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.cache.size;
  }

  /**
   * Returns the pipeline for `code` specialised with `constants`.
   * @throws GpuValidationError with the shader compiler's messages when the WGSL is invalid.
   */
  get(name: string, code: string, constants: Constants = {}, variant = ''): Promise<GPUComputePipeline> {
    const key = pipelineKey(name, constants, variant);
    let p = this.cache.get(key);
    if (!p) {
      p = this.create(name, code, constants, `${name}|${variant}`);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async create(
    name: string,
    code: string,
    constants: Constants,
    moduleKey: string,
  ): Promise<GPUComputePipeline> {
    const device = this.device;
    let module = this.modules.get(moduleKey);
    if (!module) {
      // push and pop with no await between them, so concurrent callers never pop each other's scope
      device.pushErrorScope('validation');
      module = device.createShaderModule({ code, label: `${name}.module` });
      const err = await device.popErrorScope();
      if (err) {
        const info = await module.getCompilationInfo();
        const msgs = info.messages
          .filter((m) => m.type === 'error')
          .map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)
          .join('; ');
        throw new GpuValidationError(`shader ${name} does not compile: ${msgs || err.message}`);
      }
      this.modules.set(moduleKey, module);
    }
    // Async creation reports failures through the rejected promise, not an error scope.
    try {
      return await device.createComputePipelineAsync({
        label: `${name}.pipeline`,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants },
      });
    } catch (e) {
      throw new GpuValidationError(`pipeline ${name} ${JSON.stringify(constants)} failed: ${firstLine(e)}`);
    }
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}
