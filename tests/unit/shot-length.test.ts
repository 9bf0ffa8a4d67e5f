/** src/model/config.ts shotLengthNote: what the shot cards and the CLI say about a shot whose length is not the model's trained one. */
import { describe, expect, it } from 'vitest';
import { offLengthShots } from '../../src/cli/generate.ts';
import { shotLengthNote, type ModelConfig } from '../../src/model/config.ts';

describe('shotLengthNote', () => {
  it('says nothing within the trained lengths or for a model that does not say', () => {
    expect(shotLengthNote(8, { min: 8, max: 8 })).toBeNull();
    expect(shotLengthNote(6, { min: 4, max: 12 })).toBeNull();
    expect(shotLengthNote(3, null)).toBeNull();
  });

  it('names the trained length and what goes wrong on either side', () => {
    expect(shotLengthNote(12, { min: 8, max: 8 })).toBe(
      'The model was trained on 8-frame shots: frames after frame 8 may break up.',
    );
    expect(shotLengthNote(2, { min: 8, max: 8 })).toBe(
      'The model was trained on 8-frame shots: shorter ones may come out blurred or empty.',
    );
    expect(shotLengthNote(16, { min: 4, max: 12 })).toBe(
      'The model was trained on shots of 4–12 frames: frames after frame 12 may break up.',
    );
    expect(shotLengthNote(2, { min: 4, max: 12 })).toMatch(/^The model was trained on shots of 4–12 frames: shorter/);
  });
});

describe("offLengthShots (moc generate's note)", () => {
  it('groups the shots outside the trained length by what it means', () => {
    const cfg = { trainFrames: { min: 8, max: 8 } } as ModelConfig;
    const got = offLengthShots([{ frames: 8 }, { frames: 12 }, { frames: 4 }, { frames: 16 }], cfg);
    expect([...got.values()]).toEqual([[2, 4], [3]]);
    expect([...got.keys()][0]).toMatch(/after frame 8 may break up/);
    expect(offLengthShots([{ frames: 12 }], { trainFrames: null } as ModelConfig).size).toBe(0);
  });
});
