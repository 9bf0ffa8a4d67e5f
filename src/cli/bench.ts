/**
 * `moc bench <suite> [options]`: GPU benchmarks on this machine's adapter (Dawn in Node).
 * Suites live in ./bench/<suite>.ts; the shared timing harness in ./bench/harness.ts.
 *
 *   kernels   every engine kernel against the device's measured peaks (bench/kernels.ts)
 *   attention MoC sparse attention (both kernel designs) vs dense flash attention over long
 *             multi-shot layouts, 4k to 131k tokens (bench/attention.ts)
 *   cache     the kept-shot cache: a sampler step appending or regenerating a shot of a
 *             valley-day-shaped board vs the whole board (bench/cache.ts; --model DIR)
 *
 * Options: --quick (small sizes, e.g. SwiftShader), --tune (kernels: time every matmul tile
 * config; attention: every attention tile of both designs at one size), --json PATH (write the
 * results), --filter TEXT (only cases whose name contains it), --samples N (timed samples per
 * case), --sdpa (attention: also run bench/sdpa.py, PyTorch dense attention, for the same sizes).
 */
import type { KernelsArgs } from './bench/kernels.ts';

export interface BenchArgs extends KernelsArgs {
  sdpa: boolean;
  /** cache: the model folder (a causal-text model). */
  model: string | null;
}

const SUITES: Record<string, { summary: string; run: (args: BenchArgs) => Promise<number> }> = {
  kernels: {
    summary: 'every kernel vs the measured copy and matmul peaks',
    run: async (a) => (await import('./bench/kernels.ts')).run(a),
  },
  attention: {
    summary: 'MoC sparse attention (designs A and B) vs dense, 4k to 131k tokens',
    run: async (a) => (await import('./bench/attention.ts')).run(a),
  },
  cache: {
    summary: 'kept-shot cache: append / regenerate a shot vs the whole board, per step',
    run: async (a) => (await import('./bench/cache.ts')).run(a),
  },
};

const USAGE = `usage: moc bench <${Object.keys(SUITES).join('|')}> [--quick] [--tune] [--json PATH] [--filter TEXT] [--samples N] [--sdpa] [--model DIR]`;

/** Parses the options; returns a one-line complaint instead of throwing. */
function parse(argv: string[]): BenchArgs | string {
  const out: BenchArgs = {
    quick: false,
    tune: false,
    json: null,
    filter: null,
    samples: null,
    sdpa: false,
    model: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string | null => (i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[++i] : null);
    switch (a) {
      case '--quick':
        out.quick = true;
        break;
      case '--tune':
        out.tune = true;
        break;
      case '--sdpa':
        out.sdpa = true;
        break;
      case '--json':
        if ((out.json = value()) === null) return '--json needs a file path';
        break;
      case '--model':
        if ((out.model = value()) === null) return '--model needs a folder';
        break;
      case '--filter':
        if ((out.filter = value()) === null) return '--filter needs some text';
        break;
      case '--samples': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) return '--samples needs a positive integer';
        out.samples = n;
        break;
      }
      default:
        return `unknown option '${a}'`;
    }
  }
  return out;
}

export async function run(args: string[]): Promise<number> {
  const [suite, ...rest] = args;
  if (!suite || suite === '--help' || suite === '-h') {
    console.log(
      `${USAGE}\n${Object.entries(SUITES)
        .map(([k, s]) => `  ${k.padEnd(10)} ${s.summary}`)
        .join('\n')}`,
    );
    return suite ? 0 : 2;
  }
  const s = SUITES[suite];
  if (!s) {
    console.error(`moc bench: unknown suite '${suite}' (known: ${Object.keys(SUITES).join(', ')})`);
    return 2;
  }
  const parsed = parse(rest);
  if (typeof parsed === 'string') {
    console.error(`moc bench ${suite}: ${parsed}; ${USAGE}`);
    return 2;
  }
  return s.run(parsed);
}
