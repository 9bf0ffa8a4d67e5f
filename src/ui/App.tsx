import { EnginePanel } from './EnginePanel.tsx';
import { StatusBar } from './StatusBar.tsx';

/** The studio shell: header, workspace, status bar. */
export function App() {
  return (
    <div className="app">
      <header className="app-header">
        <img className="logo" src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width={28} height={28} />
        <h1>MoC Studio</h1>
        <p className="tagline">Multi-shot video generation with Mixture-of-Contexts attention, on your GPU</p>
      </header>
      <main className="workspace">
        <EnginePanel />
      </main>
      <StatusBar />
    </div>
  );
}
