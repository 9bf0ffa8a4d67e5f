/** Page entry: render the studio and start the engine worker straight away. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { startEngine } from './state/actions/engine.ts';
import { App } from './ui/App.tsx';
import './ui/styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
void startEngine();
