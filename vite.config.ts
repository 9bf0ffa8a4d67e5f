/**
 * Vite: the studio page (index.html → src/main.tsx) and its module worker.
 * WGSL is imported as text with the built-in `?raw` suffix; no plugin is needed for it.
 */
import { existsSync, readFileSync } from 'node:fs';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * The Content-Security-Policy of the built studio: scripts, workers, fetches (models, indexes)
 * only from the studio's own origin, no inline scripts, no eval, no plugins; images and media
 * also from blob: and data: (frames, exported takes). WebGPU needs nothing. Only the production
 * build gets it: the dev server's React refresh preamble is an inline script.
 * (frame-ancestors cannot be set from a <meta>; a server that hosts the studio can add it.)
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "style-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'moc-content-security-policy',
    apply: 'build',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY }, injectTo: 'head-prepend' }],
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
      for (const file of LINKED_DOCS) if (existsSync(file)) this.emitFile({ type: 'asset', fileName: file, source: readFileSync(file) });
    },
  };
}

export default defineConfig({
  plugins: [react(), contentSecurityPolicy(), linkedDocs()],
  worker: {
    // The engine worker is an ES module (`new Worker(url, { type: 'module' })`).
    format: 'es',
  },
  build: {
    outDir: 'dist',
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    strictPort: true,
  },
});
