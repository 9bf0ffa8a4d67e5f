/** src/model/config.ts shotLengthNote: what the shot cards and the CLI say about a shot whose length is not the model's trained one. */
import { describe, expect, it } from 'vitest';
import { shotLengthNote } from '../../src/model/config.ts';

describe('shotLengthNote', () => {
  it('says nothing for the trained length or a model that does not say', () => {
    expect(shotLengthNote(8, 8)).toBeNull();
    expect(shotLengthNote(3, null)).toBeNull();
  });

  it('names the trained length and what goes wrong on either side', () => {
    expect(shotLengthNote(12, 8)).toBe('The model was trained on 8-frame shots: frames after frame 8 may break up.');
    expect(shotLengthNote(2, 8)).toBe('The model was trained on 8-frame shots: shorter ones may come out blurred or empty.');
  });
});
