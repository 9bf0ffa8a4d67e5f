import { describe, expect, it } from 'vitest';
import { UsageError, userMessage } from '../../src/cli/main.ts';
import { UnsupportedError } from '../../src/engine/errors.ts';
import { InputError } from '../../src/model/errors.ts';
import { RequestError } from '../../src/model/generate.ts';
import { LayoutError } from '../../src/model/layout.ts';
import { StoryboardError } from '../../src/model/storyboard.ts';
import { CaptionError } from '../../src/model/tokenizer.ts';
import { ENGINE_ERROR_CODES, WorkerError, fromWire, inputToWorkerError, toWire } from '../../src/worker/errors.ts';

const USER_ERRORS = [
  new InputError('model "m"/config.json: depth: too small'),
  new StoryboardError('storyboard.shots[0].frames: too big'),
  new LayoutError('chunk 2 [4, 4) is empty'),
  new CaptionError('shot 1: unknown word "zebra"'),
  new RequestError('steps must be ≥ 1'),
  new UsageError('--out DIR is required'),
];

describe('one error base: InputError answers "is this the user\'s fault?"', () => {
  it('every input error of the model and the CLI is an InputError with its own name and a one-line message', () => {
    for (const e of USER_ERRORS) expect(e).toBeInstanceOf(InputError);
    expect(USER_ERRORS.map((e) => e.name)).toEqual([
      'InputError',
      'StoryboardError',
      'LayoutError',
      'CaptionError',
      'RequestError',
      'UsageError',
    ]);
    expect(new StoryboardError('a\nb').message).toBe('a\\u000ab');
    expect(new LayoutError('c\rd').message).toBe('c\\u000dd');
  });

  it('the worker maps every one of them to the code of the phase, and passes anything else through', () => {
    for (const code of ['model-invalid', 'bad-request'] as const) {
      for (const e of USER_ERRORS) {
        const w = inputToWorkerError(e, code);
        expect(w).toBeInstanceOf(WorkerError);
        expect((w as WorkerError).toInfo()).toEqual({ code, message: e.message });
      }
    }
    const bug = new TypeError('x is undefined');
    expect(inputToWorkerError(bug, 'bad-request')).toBe(bug);
  });

  it('the CLI prints input and engine errors as one line and leaves bugs alone', () => {
    for (const e of USER_ERRORS) expect(userMessage(e)).toBe(e.message);
    expect(userMessage(new UnsupportedError('top_k 99 is outside 0..16'))).toBe('top_k 99 is outside 0..16');
    expect(userMessage(new TypeError('x is undefined'))).toBeNull();
    expect(userMessage('a string')).toBeNull();
  });

  it('every engine error code crosses the wire; an unknown one becomes internal', () => {
    for (const code of ENGINE_ERROR_CODES) expect(fromWire(toWire(new WorkerError(code, 'm'))).code).toBe(code);
    expect(fromWire({ mocWorkerError: true, code: 'no-such-code', message: 'm' }).code).toBe('internal');
  });
});
