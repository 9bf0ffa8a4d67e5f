#!/usr/bin/env node
// `npx moc …`: runs the TypeScript CLI (src/cli/main.ts) through tsx, with WGSL `?raw` imports.
// tsx is a devDependency: after `npm ci --omit=dev` it is missing, and this says so in one line
// (with what to do) instead of a stack trace.
import { register } from 'node:module';

let registerTsx;
try {
  ({ register: registerTsx } = await import('tsx/esm/api'));
} catch (e) {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  console.error(
    'moc: the TypeScript loader tsx is not installed (it is a devDependency; `npm ci --omit=dev` leaves it out): ' +
      'run `npm ci`, or bundle the CLI with `npm run build:cli` on a full install and run `node .build/cli.mjs`',
  );
  process.exit(1);
}
registerTsx();
register('./raw-hooks.mjs', import.meta.url);
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
