/**
 * `moc attention` end to end: a file written here, the CLI run as a child process
 * (`node bin/moc.mjs attention …`, on SwiftShader where there is no GPU), its output read back
 * and checked against the CPU reference. Keys are multiples of 1/8 over video chunks of 32
 * tokens, so GPU and CPU routing scores are exact and the routed indices must match exactly.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/random.ts';
import { readAttentionInput } from '../../src/cli/attention.ts';
import { buildChunkTable } from '../../src/model/layout.ts';
import { mocReference, type MocConfig } from '../../src/model/moc-reference.ts';
import { parseSafetensors, serializeSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';
import { assertClose, assertEqualInts } from '../helpers/compare.ts';

const dir = mkdtempSync(join(tmpdir(), 'moc-cli-'));
const table = buildChunkTable({
  globalCaptionTokens: 5,
  shots: [2, 3, 1].map((frames) => ({ captionTokens: 5, frames })),
  tokensPerFrame: 32,
  chunkFrames: 1,
});
const [H, N, D] = [2, table.n, 32]; // a head dim the fused attention kernel has a pipeline for

function eighths(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.int(33) - 16) / 8);
}

const rng = new Rng(2024);
const q = eighths(rng, H * N * D);
const k = eighths(rng, H * N * D);
const v = rng.normals(H * N * D);
// a routing view (MOC.md §3b): its own queries and keys, on the same exact grid
const qRoute = eighths(rng, H * N * D);
const kRoute = eighths(rng, H * N * D);
const routeTensors = (): Record<string, SafeTensor> => ({
  q_route: { dtype: 'F32', shape: [H, N, D], data: qRoute },
  k_route: { dtype: 'F32', shape: [H, N, D], data: kRoute },
});

function inputTensors(): Record<string, SafeTensor> {
  return {
    ...qkv(q, k, v, D),
    chunk_start: { dtype: 'I32', shape: [table.start.length], data: table.start },
    chunk_end: { dtype: 'I32', shape: [table.start.length], data: table.end },
    chunk_shot: { dtype: 'I32', shape: [table.start.length], data: table.shot },
    chunk_kind: { dtype: 'I32', shape: [table.start.length], data: table.kind },
  };
}

function qkv(q: Float32Array, k: Float32Array, v: Float32Array, d: number): Record<string, SafeTensor> {
  return {
    q: { dtype: 'F32', shape: [H, N, d], data: q },
    k: { dtype: 'F32', shape: [H, N, d], data: k },
    v: { dtype: 'F32', shape: [H, N, d], data: v },
  };
}

function moc(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/moc.mjs', 'attention', ...args], { cwd: process.cwd() }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function writeInput(name: string, tensors: Record<string, SafeTensor>, meta: Record<string, string>): string {
  const path = join(dir, name);
  writeFileSync(path, serializeSafetensors(tensors, meta));
  return path;
}

describe('moc attention (CLI)', () => {
  const cases: Array<[string, MocConfig, boolean]> = [
    ['gpu routing, causal, k=2', { topK: 2, causal: true, mode: 'moc' }, false],
    ['--cpu, causal, k=2', { topK: 2, causal: true, mode: 'moc' }, true],
    ['dense', { topK: 2, causal: true, mode: 'dense' }, false],
    ['gpu routing, causal text', { topK: 2, causal: true, mode: 'moc', causalText: true }, false],
    ['--cpu, causal text', { topK: 2, causal: true, mode: 'moc', causalText: true }, true],
  ];
  cases.forEach(([name, cfg, cpu], n) => {
    it.concurrent(`round trip: ${name}`, async ({ expect }) => {
      const ct: Record<string, string> = cfg.causalText ? { causal_text: 'true' } : {};
      const input = writeInput(`in${n}.safetensors`, inputTensors(), {
        top_k: String(cfg.topK),
        causal: String(cfg.causal),
        mode: cfg.mode,
        ...ct,
      });
      const output = join(dir, `out${n}.safetensors`);
      const r = await moc(['--in', input, '--out', output, ...(cpu ? ['--cpu'] : [])]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(cpu ? /\(cpu\)/ : /\(gpu/);
      const f = parseSafetensors(readFileSync(output), output);
      const ref = mocReference(q, k, v, { H, N, D }, table, cfg);
      expect(f.tensors.get('out')!.shape).toEqual([H, N, D]);
      expect(f.tensors.get('routed')!.shape).toEqual([H, N, cfg.topK]);
      assertEqualInts('routed', f.tensors.get('routed')!.data, ref.routed);
      assertClose('out', f.tensors.get('out')!.data, ref.out, { atol: 1e-5, rtol: 1e-5 });
      expect(Number(f.metadata.sparsity)).toBeCloseTo(ref.sparsity, 12);
      if (cfg.mode === 'moc') expect(ref.routed.some((x) => x >= 0)).toBe(true);
      expect(f.metadata.causal_text).toBe(String(cfg.causalText ?? false));
      if (cfg.causalText) {
        const v1 = mocReference(q, k, v, { H, N, D }, table, { ...cfg, causalText: false });
        expect(v1.out.some((x, j) => Math.abs(x - ref.out[j]) > 1e-3)).toBe(true); // the option changes the result
      }
    });
  });

  for (const cpu of [false, true]) {
    it.concurrent(
      `routing view q_route/k_route (${cpu ? '--cpu' : 'gpu'}): routes by the view, attends with q, k, v`,
      async ({ expect }) => {
        const cfg: MocConfig = { topK: 2, causal: true, mode: 'moc' };
        const input = writeInput(
          `route-${cpu}.safetensors`,
          { ...inputTensors(), ...routeTensors() },
          { top_k: '2', causal: 'true', mode: 'moc' },
        );
        const output = join(dir, `route-${cpu}-out.safetensors`);
        const r = await moc(['--in', input, '--out', output, ...(cpu ? ['--cpu'] : [])]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/routing by q_route\/k_route/);
        const f = parseSafetensors(readFileSync(output), output);
        const ref = mocReference(q, k, v, { H, N, D }, table, cfg, { q: qRoute, k: kRoute });
        // the view must matter here, or this test could not tell a CLI that ignores it
        const plain = mocReference(q, k, v, { H, N, D }, table, cfg);
        expect(Array.from(ref.routed)).not.toEqual(Array.from(plain.routed));
        assertEqualInts('routed', f.tensors.get('routed')!.data, ref.routed);
        assertClose('out', f.tensors.get('out')!.data, ref.out, { atol: 1e-5, rtol: 1e-5 });
        expect(Number(f.metadata.sparsity)).toBeCloseTo(ref.sparsity, 12);
        expect(f.metadata.route_view).toBe('q_route,k_route');
      },
    );
  }

  it.concurrent(
    'D=8: GPU routing (not causal, k larger than the candidates), CPU attention with a note',
    async ({ expect }) => {
      const d = 8;
      const r2 = new Rng(7);
      const [q8, k8, v8] = [eighths(r2, H * N * d), eighths(r2, H * N * d), r2.normals(H * N * d)];
      const cfg: MocConfig = { topK: 9, causal: false, mode: 'moc' };
      const input = writeInput(
        'd8.safetensors',
        { ...inputTensors(), ...qkv(q8, k8, v8, d) },
        { top_k: '9', causal: 'false', mode: 'moc' },
      );
      const output = join(dir, 'd8-out.safetensors');
      const r = await moc(['--in', input, '--out', output]);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/head dim D=8 .*: attention on the CPU/);
      expect(r.stdout).toMatch(/attention on the cpu/);
      const f = parseSafetensors(readFileSync(output), output);
      const ref = mocReference(q8, k8, v8, { H, N, D: d }, table, cfg);
      expect(ref.routed.filter((r) => r >= 0).length).toBeLessThan(H * N * 9); // k exceeds the candidates
      assertEqualInts('routed', f.tensors.get('routed')!.data, ref.routed);
      assertClose('out', f.tensors.get('out')!.data, ref.out, { atol: 1e-5, rtol: 1e-5 });
    },
  );

  const meta = { top_k: '2', causal: 'true', mode: 'moc' };
  const bad: Array<[string, () => Record<string, SafeTensor>, Record<string, string>, RegExp]> = [
    [
      'a missing tensor',
      () => ({ ...inputTensors(), v: undefined as unknown as SafeTensor }),
      meta,
      /missing tensor 'v'/,
    ],
    [
      'a wrong dtype',
      () => ({
        ...inputTensors(),
        chunk_kind: { dtype: 'F32', shape: [table.start.length], data: Float32Array.from(table.kind) },
      }),
      meta,
      /tensor 'chunk_kind' is F32, expected I32/,
    ],
    [
      'a wrong shape',
      () => ({ ...inputTensors(), k: { dtype: 'F32', shape: [H, N, D - 1], data: k.subarray(0, H * N * (D - 1)) } }),
      meta,
      /tensor 'k' has shape \[2, \d+, 31\], expected/,
    ],
    [
      'overlapping chunks',
      () => ({
        ...inputTensors(),
        chunk_start: {
          dtype: 'I32',
          shape: [table.start.length],
          data: table.start.map((s, c) => (c === 3 ? s - 1 : s)),
        },
      }),
      meta,
      /chunk table: chunk 3 .* overlaps chunk 2/,
    ],
    [
      'a gap',
      () => ({
        ...inputTensors(),
        chunk_end: { dtype: 'I32', shape: [table.start.length], data: table.end.map((e, c) => (c === 1 ? e - 1 : e)) },
      }),
      meta,
      /chunk table: gap before chunk 2/,
    ],
    [
      'chunks beyond N',
      () => ({
        ...inputTensors(),
        chunk_end: {
          dtype: 'I32',
          shape: [table.start.length],
          data: table.end.map((e, c) => (c === table.start.length - 1 ? e + 4 : e)),
        },
      }),
      meta,
      /exceeds N = /,
    ],
    [
      'a NaN in q',
      () => ({
        ...inputTensors(),
        q: { dtype: 'F32', shape: [H, N, D], data: q.map((x, j) => (j === N * D + 3 ? NaN : x)) },
      }),
      meta,
      /tensor 'q' has a non-finite value \(NaN\) at \[1, 0, 3\]/,
    ],
    [
      'a video chunk in no shot',
      () => ({
        ...inputTensors(),
        chunk_shot: { dtype: 'I32', shape: [table.start.length], data: table.shot.map((x, c) => (c === 2 ? -1 : x)) },
      }),
      meta,
      /chunk 2 is video with shot -1/,
    ],
    ['top_k < 0', inputTensors, { ...meta, top_k: '-1' }, /top_k -1 must be ≥ 0/],
    ['a fractional top_k', inputTensors, { ...meta, top_k: '2.5' }, /top_k '2.5' is not an integer/],
    ['a bad mode', inputTensors, { ...meta, mode: 'sparse' }, /mode 'sparse' must be 'moc' or 'dense'/],
    ['a missing causal', inputTensors, { top_k: '2', mode: 'moc' }, /__metadata__ lacks 'causal'/],
    [
      'top_k beyond the chunks',
      inputTensors,
      { ...meta, top_k: String(table.start.length + 1) },
      new RegExp(`top_k ${table.start.length + 1} is more than the ${table.start.length} chunks`),
    ],
    ['top_k 1e9', inputTensors, { ...meta, top_k: '1000000000' }, /top_k 1000000000 is more than the \d+ chunks/],
    [
      'finite q, k near 1e19 (q·k overflows float32 on the GPU)',
      () => ({
        ...inputTensors(),
        ...qkv(
          q.map((x) => x * 1e19),
          k.map((x) => x * 1e19),
          v,
          D,
        ),
      }),
      meta,
      /the output has a non-finite value \(NaN\) at \[\d+, \d+, \d+\] although the inputs are finite: with values up to 2\.00e\+19, q·k overflows float32 on gpu/,
    ],
    [
      'q_route without k_route',
      () => ({ ...inputTensors(), q_route: routeTensors().q_route }),
      meta,
      /tensor 'q_route' without 'k_route'/,
    ],
    [
      'k_route without q_route',
      () => ({ ...inputTensors(), k_route: routeTensors().k_route }),
      meta,
      /tensor 'k_route' without 'q_route'/,
    ],
    [
      'a wrong k_route shape',
      () => ({
        ...inputTensors(),
        ...routeTensors(),
        k_route: { dtype: 'F32', shape: [H, N - 1, D], data: kRoute.subarray(0, H * (N - 1) * D) },
      }),
      meta,
      /tensor 'k_route' has shape \[2, \d+, 32\], expected .* like q/,
    ],
    [
      'an I32 q_route',
      () => ({
        ...inputTensors(),
        ...routeTensors(),
        q_route: { dtype: 'I32', shape: [H, N, D], data: new Int32Array(H * N * D) },
      }),
      meta,
      /tensor 'q_route' is I32, expected F32/,
    ],
    [
      'an infinity in k_route',
      () => ({
        ...inputTensors(),
        ...routeTensors(),
        k_route: { dtype: 'F32', shape: [H, N, D], data: kRoute.map((x, j) => (j === 5 ? Infinity : x)) },
      }),
      meta,
      /tensor 'k_route' has a non-finite value \(Infinity\) at \[0, 0, 5\]/,
    ],
    ['a bad causal_text', inputTensors, { ...meta, causal_text: 'yes' }, /causal_text 'yes' must be 'true' or 'false'/],
  ];
  for (const [name, tensors, m, re] of bad) {
    it.concurrent(`refuses ${name} with one line and exit code 1`, async ({ expect }) => {
      const t = Object.fromEntries(Object.entries(tensors()).filter(([, x]) => x !== undefined));
      const input = writeInput(`bad-${name.replace(/\W+/g, '-')}.safetensors`, t, m);
      const r = await moc(['--in', input, '--out', join(dir, 'never.safetensors')]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^moc attention: /);
      expect(r.stderr).toMatch(re);
    });
  }

  it('refuses an output over the size cap, in-process, before computing', () => {
    // 16384 one-token chunks: a 448 KiB input whose top_k = C would make a 1 GiB routed tensor
    const big = buildChunkTable({
      globalCaptionTokens: 1,
      shots: [{ captionTokens: 1, frames: 16382 }],
      tokensPerFrame: 1,
      chunkFrames: 1,
    });
    const n = big.n;
    const ones = new Float32Array(n);
    const file = parseSafetensors(
      serializeSafetensors(
        {
          q: { dtype: 'F32', shape: [1, n, 1], data: ones },
          k: { dtype: 'F32', shape: [1, n, 1], data: ones },
          v: { dtype: 'F32', shape: [1, n, 1], data: ones },
          chunk_start: { dtype: 'I32', shape: [big.start.length], data: big.start },
          chunk_end: { dtype: 'I32', shape: [big.start.length], data: big.end },
          chunk_shot: { dtype: 'I32', shape: [big.start.length], data: big.shot },
          chunk_kind: { dtype: 'I32', shape: [big.start.length], data: big.kind },
        },
        { top_k: String(big.start.length), causal: 'true', mode: 'moc' },
      ),
      'big.safetensors',
    );
    expect(() => readAttentionInput(file, 'big.safetensors')).toThrow(
      /^big\.safetensors: the output \(out and routed, H·N·\(D \+ top_k\)·4 bytes\) would be 1024\.1 MiB, more than the limit of 1024 MiB$/,
    );
  });

  it('refuses a corrupt file and a missing file', async () => {
    const path = join(dir, 'corrupt.safetensors');
    writeFileSync(path, new Uint8Array([1, 2, 3]));
    const r = await moc(['--in', path, '--out', join(dir, 'never.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corrupt\.safetensors: not a safetensors file/);
    const m = await moc(['--in', join(dir, 'nope.safetensors'), '--out', join(dir, 'never.safetensors')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/cannot read .*nope\.safetensors: ENOENT/);
  });

  it('refuses bad arguments', async () => {
    const r = await moc(['--in', 'x.safetensors']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--in and --out are required/);
  });
});
