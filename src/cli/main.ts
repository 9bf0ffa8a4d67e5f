/**
 * The `moc` command line: `moc <command> [options]`. Each command lives in its own module and
 * exports `run(args): Promise<number>` (the exit code). User-facing errors print one line on
 * stderr (control characters in paths and names escaped) and exit non-zero; bugs keep their stack.
 */
import { EngineError } from '../engine/errors.ts';
import { InputError, oneLine } from '../model/errors.ts';

/** Bad command-line arguments: the user's input, like the model's InputErrors. */
export class UsageError extends InputError {
  override name = 'UsageError';
}

/** The one-line message of an error the user can act on (bad input, an engine refusal), or null for a bug. */
export function userMessage(e: unknown): string | null {
  return e instanceof InputError || e instanceof EngineError ? oneLine(e.message) : null;
}

type Command = { summary: string; load: () => Promise<{ run: (args: string[]) => Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  bench: { summary: 'GPU benchmarks: bench kernels | bench attention', load: () => import('./bench.ts') },
  attention: {
    summary: 'MoC attention on an exchange file: attention --in IN.safetensors --out OUT.safetensors',
    load: () => import('./attention.ts'),
  },
  generate: {
    summary: 'Sample a storyboard: generate STORYBOARD.json --out DIR [--model DIR] [--attention moc|dense|shot] …',
    load: () => import('./generate.ts'),
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(10)} ${c.summary}`);
  const version = `  ${'--version'.padEnd(10)} the version, the Dawn flags and what the GPU adapter exposes`;
  return `usage: moc <command> [options]\n${lines.join('\n')}\n${version}`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd =
    name === '--version' || name === '-V' ? { summary: '', load: () => import('./version.ts') } : COMMANDS[name];
  if (!cmd) {
    console.error(
      `moc: unknown command '${oneLine(name)}'; commands: ${Object.keys(COMMANDS).join(', ')} (moc --help)`,
    );
    return 2;
  }
  try {
    const mod = await cmd.load();
    return await mod.run(args);
  } catch (e) {
    const msg = userMessage(e);
    if (msg !== null) {
      console.error(`moc ${name}: ${msg}`);
      return 1;
    }
    throw e;
  }
}
