/**
 * An error boundary around one panel: a render error in it (a damaged record that got past the
 * checks on read, a bug) shows one line and a way out in that panel only; the rest of the studio
 * keeps working, and the storyboard can still be exported.
 */
import { Component, type ErrorInfo, type ReactNode } from 'react';
import { exportStoryboard } from '../state/actions/board.ts';
import { download } from '../state/actions/export.ts';

interface Props {
  /** Names the panel in the message, e.g. "The takes panel". */
  name: string;
  children: ReactNode;
}

export class PanelGuard extends Component<Props, { error: Error | null }> {
  override state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error): { error: Error } {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`${this.props.name} failed:`, error, info.componentStack);
  }

  override render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <section className="panel panel-failed" role="alert">
        <p>
          {this.props.name} failed: {String(error.message).split('\n')[0].slice(0, 200)}. The rest of the studio and
          your storyboard are kept.
        </p>
        <button
          type="button"
          onClick={() => download(new Blob([exportStoryboard()], { type: 'application/json' }), 'storyboard.json')}
        >
          Export storyboard JSON
        </button>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </section>
    );
  }
}
