/**
 * `moc generate` end to end as a child process (node bin/moc.mjs; SwiftShader where there is no
 * GPU) with the tiny fixture model, and, in-process through main(), its one-line refusals of bad
 * input (which stop before the GPU starts, so they are quick).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { MODEL_DIR } from './fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'moc-generate-'));

function moc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['bin/moc.mjs', 'generate', ...args],
      { cwd: process.cwd(), timeout: 590_000 },
      (err, stdout, stderr) => {
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function board(
  shots: Array<{ caption: string; frames: number; seed: number }>,
  globalCaption = 'Character 1 is a red star.',
): string {
  const path = join(dir, `board-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ version: 1, globalCaption, shots }));
  return path;
}

const good = (): string =>
  board([
    { caption: 'Character 1 bounces in the meadow.', frames: 2, seed: 3 },
    { caption: 'Character 1 spins, close-up.', frames: 1, seed: 4 },
  ]);

async function refused(args: string[], message: RegExp): Promise<void> {
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    expect(await main(['generate', ...args])).toBe(1);
    expect(err).toHaveBeenCalledTimes(1);
    const text = String(err.mock.calls[0][0]);
    expect(text.split('\n')[0]).toMatch(message);
  } finally {
    err.mockRestore();
  }
}

describe('moc generate', () => {
  it('refuses bad input with one line and exit code 1', async () => {
    const out = join(dir, 'never');
    await refused(
      [board([]), '--out', out, '--model', MODEL_DIR],
      /^moc generate: storyboard\.shots: a storyboard needs at least one shot$/,
    );
    await refused(
      [
        board([{ caption: 'Character 1 flies over the moon.', frames: 1, seed: 0 }]),
        '--out',
        out,
        '--model',
        MODEL_DIR,
      ],
      /^moc generate: storyboard\.shots\[0\]\.caption: words 'flies', 'over', 'moon' not in the vocabulary of model 'fixture-tiny' \(45 words\)$/,
    );
    await refused([good(), '--model', MODEL_DIR], /^moc generate: --out DIR is required; usage: moc generate /);
    await refused(
      [good(), '--out', out, '--model', MODEL_DIR, '--attention', 'sparse'],
      /^moc generate: --attention must be moc, dense or shot, got 'sparse'$/,
    );
    await refused(
      [good(), '--out', out, '--model', MODEL_DIR, '--top-k', '40'],
      /^moc generate: top-k must be an integer in 0\.\.16, got 40$/,
    );
    await refused(
      [join(dir, 'missing.json'), '--out', out, '--model', MODEL_DIR],
      /^moc generate: cannot read .*missing\.json: ENOENT/,
    );
    const broken = join(dir, 'broken-model');
    cpSync(MODEL_DIR, broken, { recursive: true });
    const st = readFileSync(join(broken, 'model.safetensors'));
    writeFileSync(join(broken, 'model.safetensors'), st.subarray(0, st.length - 100));
    await refused(
      [good(), '--out', out, '--model', broken],
      /^moc generate: .*model\.safetensors: \d+ bytes, manifest\.json says \d+ \(truncated or replaced\?\)$/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('writes frames, an animated preview, routing.json and timing.json', { timeout: 600_000 }, async () => {
    const out = join(dir, 'run');
    const r = await moc(
      good(),
      '--out',
      out,
      '--model',
      MODEL_DIR,
      '--steps',
      '2',
      '--top-k',
      '2',
      '--guidance',
      '1',
      '--profile',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step 2\/2/);
    expect(readdirSync(join(out, 'shot-00'))).toEqual(['frame-000.png', 'frame-001.png']);
    expect(readdirSync(join(out, 'shot-01'))).toEqual(['frame-000.png']);
    const preview = readFileSync(join(out, 'preview.png'));
    expect(preview.includes(Buffer.from('acTL'))).toBe(true);
    const routing = JSON.parse(readFileSync(join(out, 'routing.json'), 'utf8'));
    expect(routing.chunks).toHaveLength(6);
    expect(routing.steps.map((s: { step: number }) => s.step)).toEqual([1, 2]);
    const layer = routing.steps[1].layers[0];
    // routed edges [from, to, count] summed over heads: only shot 1's frame (stream chunk 5) has
    // earlier chunks outside its shot, and routes top-2 of shot 0's two frames (chunks 2, 3):
    // 16 queries × 2 heads each
    const edges = layer.edges as [number, number, number][];
    expect(edges.length).toBeGreaterThan(0);
    expect(edges.every(([from, to, n]) => from === 5 && (to === 2 || to === 3) && n > 0)).toBe(true);
    expect(edges.reduce((sum, e) => sum + e[2], 0)).toBe(16 * 2 * 2);
    expect(edges.map((e) => e[1])).toEqual([...edges.map((e) => e[1])].sort((x, y) => x - y));
    expect(layer.sparsityPerHead).toHaveLength(2);
    expect(layer.sparsity).toBeGreaterThan(0);
    const timing = JSON.parse(readFileSync(join(out, 'timing.json'), 'utf8'));
    expect(timing.perStep).toHaveLength(2);
    expect(timing.secondsPerVideo).toBeGreaterThan(0);
    expect(Object.keys(timing.msPerStep)).toEqual([
      'total',
      'medianTotal',
      'dispatches',
      'attention',
      'routing',
      'other',
    ]);
    expect(timing.msPerStep.dispatches).toBeGreaterThan(0);
    for (const t of timing.perStep) expect(t.attention + t.routing).toBeGreaterThan(0); // --profile: every step split
  });
});
