/**
 * `moc` without its devDependencies (`npm ci --omit=dev` leaves out tsx, its TypeScript loader):
 * one line saying so and what to do, exit 1, instead of a stack trace. bin/ is copied to a folder
 * with no node_modules above it.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('moc without tsx installed: one line, exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moc-nodev-'));
  mkdirSync(join(dir, 'bin'));
  for (const f of ['moc.mjs', 'raw-hooks.mjs']) copyFileSync(join('bin', f), join(dir, 'bin', f));
  const r = await new Promise<{ code: number; stderr: string }>((done) => {
    execFile(process.execPath, [join(dir, 'bin', 'moc.mjs'), 'generate', '--help'], { cwd: dir }, (err, _out, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(
    /^moc: the TypeScript loader tsx is not installed \(it is a devDependency; `npm ci --omit=dev` leaves it out\): run `npm ci`/,
  );
});
