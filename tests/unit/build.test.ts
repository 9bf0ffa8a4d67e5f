/**
 * A production build (`vite build`, default mode) ships no test hooks and no source maps, and its
 * page carries the CSP; the e2e build (`--mode e2e`, playwright.config.ts) keeps the hooks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function build(mode?: string): { files: string[]; js: string; html: string } {
  const out = mkdtempSync(join(tmpdir(), 'moc-build-'));
  execFileSync(
    process.execPath,
    [
      'node_modules/vite/bin/vite.js',
      'build',
      '--outDir',
      out,
      '--emptyOutDir',
      '--logLevel',
      'error',
      ...(mode ? ['--mode', mode] : []),
    ],
    {
      stdio: 'pipe',
      env: { ...process.env, NODE_ENV: 'production' }, // vitest sets NODE_ENV=test, which would make a dev build
    },
  );
  const files = readdirSync(out, { recursive: true }).map(String);
  const js = files
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(join(out, f), 'utf8'))
    .join('\n');
  const html = readFileSync(join(out, 'index.html'), 'utf8').replaceAll('&#39;', "'");
  rmSync(out, { recursive: true, force: true });
  return { files, js, html };
}

describe('the production build', () => {
  it('has no window.mocStudio hooks, no source maps, and the CSP meta', { timeout: 600_000 }, () => {
    const prod = build();
    expect(prod.files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(prod.js.includes('sourceMappingURL')).toBe(false);
    expect(prod.js.includes('mocStudio')).toBe(false);
    expect(prod.html).toMatch(
      /<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'; worker-src 'self'; connect-src 'self'/,
    );
    const e2e = build('e2e');
    expect(e2e.js.includes('mocStudio')).toBe(true);
  });
});
