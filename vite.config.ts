/**
 * Vite: the studio page (index.html → src/main.tsx) and its module worker.
 * WGSL is imported as text with the built-in `?raw` suffix; no plugin is needed for it.
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
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
