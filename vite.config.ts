/**
 * Vite: the studio page (index.html → src/main.tsx) and its module worker.
 * WGSL is imported as text with the built-in `?raw` suffix; no plugin is needed for it.
 */
import { existsSync, readFileSync } from 'node:fs';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * The Content-Security-Policy of the studio: scripts, workers, fetches (models, indexes) only from
 * the studio's own origin, no inline scripts, no eval, no plugins; images and media also from
 * blob: and data: (frames, exported takes); no framing by other sites. WebGPU needs nothing.
 *
 * It is sent as a response header by `vite preview` and the dev server, on every response: a
 * `<meta>` policy covers the page only, while a worker is governed by the headers of its own
 * script, so only the header keeps the engine worker from fetching or importing from another
 * origin. Any other host must send the same header (docs/RELIABILITY.md, README). The built
 * page also carries it as a `<meta>` (without frame-ancestors, which a meta cannot set), for
 * hosts that send nothing. The dev server's policy also allows React refresh's inline preamble
 * and Vite's HMR websocket.
 */
export function contentSecurityPolicy({ dev = false, meta = false } = {}): string {
  return [
    "default-src 'self'",
    dev ? "script-src 'self' 'unsafe-inline'" : "script-src 'self'",
    "worker-src 'self'",
    dev ? "connect-src 'self' ws://127.0.0.1:5173" : "connect-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
    ...(meta ? [] : ["frame-ancestors 'none'"]),
  ].join('; ');
}

function cspMeta(): Plugin {
  return {
    name: 'moc-content-security-policy',
    apply: 'build',
    transformIndexHtml: () => [
      {
        tag: 'meta',
        attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy({ meta: true }) },
        injectTo: 'head-prepend',
      },
    ],
  };
}

/**
 * The documents the studio links to (the routing graph's and teaching mode's "model card" and
 * "method" links), shipped beside the page as docs/*.md so the links work in the built studio
 * too (the dev server serves them from the repository). A document not written yet is skipped.
 */
export const LINKED_DOCS = ['docs/MODEL_CARD.md', 'docs/MOC.md'];

function linkedDocs(): Plugin {
  return {
    name: 'moc-linked-docs',
    apply: 'build',
    generateBundle() {
      for (const file of LINKED_DOCS)
        if (existsSync(file)) this.emitFile({ type: 'asset', fileName: file, source: readFileSync(file) });
    },
  };
}

/**
 * `vite build --mode e2e` (what playwright.config.ts builds) keeps the test hooks
 * (`window.mocStudio`, src/main.tsx); a plain `vite build` leaves them out. No source maps ship.
 */
export default defineConfig({
  plugins: [react(), cspMeta(), linkedDocs()],
  worker: {
    // The engine worker is an ES module (`new Worker(url, { type: 'module' })`).
    format: 'es',
  },
  build: {
    outDir: 'dist',
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    headers: { 'Content-Security-Policy': contentSecurityPolicy({ dev: true }) },
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    strictPort: true,
    headers: { 'Content-Security-Policy': contentSecurityPolicy() },
  },
});
