/**
 * Page entry: restore the saved studio (IndexedDB) before the first render, so a reload shows
 * the storyboard as it was, then render, start autosave, the engine worker, the model index and
 * the sample storyboards.
 */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { loadSamples, restoreStudio, startAutosave } from './state/actions/board.ts';
import { simulateDeviceLoss, simulateWorkerCrash, startEngine } from './state/actions/engine.ts';
import { startRunRecovery } from './state/actions/generate.ts';
import { startModelLoading } from './state/actions/model.ts';
import { useStudio } from './state/store.ts';
import { App } from './ui/App.tsx';
import './ui/styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

/**
 * Test and debugging hooks: the store, and ways to exercise device-loss and worker-crash recovery.
 * Only in the dev server and the e2e build (`vite build --mode e2e`); a production build leaves
 * them out (the condition is replaced at build time and the branch removed).
 */
declare global {
  interface Window {
    mocStudio?: { store: typeof useStudio; loseDevice(): void; crashWorker(how?: 'throw' | 'silent'): void };
  }
}
if (import.meta.env.DEV || import.meta.env.MODE === 'e2e') {
  window.mocStudio = { store: useStudio, loseDevice: simulateDeviceLoss, crashWorker: simulateWorkerCrash };
}

await restoreStudio();
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
startAutosave();
startRunRecovery();
startModelLoading();
void startEngine();
void loadSamples();
