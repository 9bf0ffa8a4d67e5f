/**
 * WorkerError: the one error class the engine api rejects with. `code` says what went wrong
 * (see EngineErrorCode in protocol.ts) so the UI can branch on it; `message` says it in words.
 *
 * Across a worker boundary a WorkerError travels as plain data (`toWire`) and is rebuilt on the
 * other side (`fromWire`), so `instanceof WorkerError` and `code` survive the trip.
 */
import { InputError } from '../model/errors.ts';
import type { EngineErrorCode, EngineErrorInfo } from './protocol.ts';

/** Every EngineErrorCode (protocol.ts derives the type from this list; its comment says what each means). */
export const ENGINE_ERROR_CODES = [
  'webgpu-missing',
  'no-adapter',
  'unsupported',
  'gpu-validation',
  'device-lost',
  'smoke-mismatch',
  'not-initialised',
  'worker-failed',
  'model-missing',
  'model-invalid',
  'no-model',
  'busy',
  'cancelled',
  'bad-request',
  'internal',
] as const;

const CODES: ReadonlySet<string> = new Set<string>(ENGINE_ERROR_CODES);

export class WorkerError extends Error {
  // A literal, not `new.target.name`: minifiers rename classes.
  override readonly name = 'WorkerError';

  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** Plain data for the store. */
  toInfo(): EngineErrorInfo {
    return { code: this.code, message: this.message };
  }
}

/**
 * The one mapping from the model's errors to protocol codes: an InputError (a file, storyboard,
 * caption, option or layout the user gave) becomes a WorkerError with `code` and its one-line
 * message: `model-invalid` while loading model files, `bad-request` while running a request.
 * Anything else is returned as it is, for the caller to rethrow.
 */
export function inputToWorkerError(e: unknown, code: 'model-invalid' | 'bad-request'): unknown {
  return e instanceof InputError ? new WorkerError(code, e.message) : e;
}

/** How a WorkerError looks on the wire: plain data comlink can clone. */
interface WireError extends EngineErrorInfo {
  mocWorkerError: true;
}

function isWireError(e: unknown): e is WireError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as Partial<WireError>).mocWorkerError === true &&
    CODES.has(String((e as WireError).code))
  );
}

/** Turns anything thrown into plain data to send across the boundary. */
export function toWire(e: unknown): WireError {
  const err = e instanceof WorkerError ? e : new WorkerError('internal', describe(e));
  return { mocWorkerError: true, code: err.code, message: err.message };
}

/** Rebuilds a WorkerError from what came across the boundary (or wraps anything else). */
export function fromWire(e: unknown): WorkerError {
  if (e instanceof WorkerError) return e;
  if (isWireError(e)) return new WorkerError(e.code, e.message);
  return new WorkerError('internal', describe(e));
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
