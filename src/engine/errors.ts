/**
 * Named errors the engine throws. Each carries a one-line message that says what was refused
 * and why, so the UI and the CLI can show it as it is and branch on `name`.
 */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU implementation, or no adapter, on this host. */
export class NoAdapterError extends EngineError {}

/** A request the engine cannot run on this adapter: a shape, a limit or a feature it lacks. */
export class UnsupportedError extends EngineError {}

/** Bad arguments to a kernel (mismatched shapes, wrong dtype, out-of-range parameters). */
export class ShapeError extends EngineError {}

/** A WebGPU validation or out-of-memory error caught in an error scope. */
export class GpuValidationError extends EngineError {}

/** The device was lost; `reason` is WebGPU's (`destroyed` or `unknown`). */
export class DeviceLostError extends EngineError {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(`GPU device lost (${reason})${detail ? `: ${detail}` : ''}`);
  }
}
