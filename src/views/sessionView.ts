import * as vscode from 'vscode';
import type { Pipeline } from '../engine/pipeline';
import type { WorkersStatus } from '../engine/workers/workerStatus';

/**
 * src/views/ presents the session to the user: the Tasks and Agents trees, the status bar, the
 * metrics panel (its webview HTML and protocol), notifications, the commands and the diff documents.
 * Views import the engine, the session (src/host/) and the contributed ids (src/contributions.ts);
 * src/host/ never imports a view (a lint rule keeps it so).
 *
 * What the trees and the status bar read of the session: the open pipeline, whether it runs here,
 * and a change event. Light on purpose: the views load at activation, the engine after it.
 */
export interface SessionView {
  readonly current: Pipeline | undefined;
  readonly running: boolean;
  /** The workers of a pipeline in PostgreSQL (which runs each agent, live or not); none on files. */
  readonly workers?: WorkersStatus | undefined;
  readonly onDidChange: vscode.Event<void>;
}

/**
 * A SessionView that exists from activation and follows the real session once the engine is
 * loaded: until then there is no pipeline to show, and when it arrives the views redraw.
 */
export class DeferredSessionView implements SessionView, vscode.Disposable {
  private target: SessionView | undefined;
  private readonly emitter = new vscode.EventEmitter<void>();
  private sub: vscode.Disposable | undefined;
  readonly onDidChange = this.emitter.event;

  get current(): Pipeline | undefined {
    return this.target?.current;
  }
  get running(): boolean {
    return this.target?.running ?? false;
  }
  get workers(): WorkersStatus | undefined {
    return this.target?.workers;
  }

  attach(target: SessionView): void {
    this.sub?.dispose();
    this.target = target;
    this.sub = target.onDidChange(() => this.emitter.fire());
    this.emitter.fire();
  }

  dispose(): void {
    this.sub?.dispose();
    this.emitter.dispose();
  }
}
