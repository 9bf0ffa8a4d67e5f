#!/usr/bin/env node
// Bundles the `moc` CLI (src/cli/main.ts and everything it imports, WGSL included) into one ESM
// file, .build/cli.mjs, for machines that have node but no node_modules (the lent GPU machine:
// carry .build with .gpu, whose enter.sh unpacks the one external, `webgpu`).
//   node scripts/build-cli.mjs        (npm run build:cli)
//   node .build/cli.mjs bench kernels --quick
// `?raw` imports become string modules, as under Vite and bin/raw-hooks.mjs. A relative import
// of a file that does not exist (a command module not written yet) becomes a stub that fails
// with a clear message when that command is run, and is listed as a warning here.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = resolve(root, '.build/cli.mjs');

/** `import text from './x.wgsl?raw'` → the file's text as the default export. */
const rawPlugin = {
  name: 'raw',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: resolve(args.resolveDir, args.path.slice(0, -4)),
      namespace: 'raw',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
      watchFiles: [args.path],
    }));
  },
};

/** Relative imports of missing .ts files → a module whose every use throws, named in a warning. */
const missing = [];
const missingPlugin = {
  name: 'missing-module',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.ts$/ }, (args) => {
      const path = resolve(args.resolveDir, args.path);
      if (existsSync(path)) return undefined;
      missing.push(`${relative(root, args.importer)} → ${args.path}`);
      return { path, namespace: 'missing' };
    });
    b.onLoad({ filter: /.*/, namespace: 'missing' }, (args) => ({
      contents: `const why = ${JSON.stringify(`${relative(root, args.path)} was missing when .build/cli.mjs was built; rebuild with npm run build:cli`)};
export async function run() { console.error(why); return 2; }
export default new Proxy({}, { get() { throw new Error(why); } });`,
      loader: 'js',
    }));
  },
};

const entry = `import { main } from './src/cli/main.ts';
process.exitCode = await main(process.argv.slice(2));
`;

const result = await build({
  stdin: { contents: entry, resolveDir: root, sourcefile: 'cli-entry.ts', loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile,
  external: ['webgpu'],
  plugins: [rawPlugin, missingPlugin],
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: '// Built by scripts/build-cli.mjs from src/cli/main.ts; do not edit.' },
  metafile: true,
});

for (const m of missing) console.warn(`build-cli: warning: missing module ${m} (stubbed)`);
const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
console.log(`build-cli: wrote ${relative(root, outfile)} (${(bytes / 1024).toFixed(0)} KiB)`);
