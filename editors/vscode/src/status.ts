/**
 * The status bar item: what the server is doing (starting, loading the model, ready, error), the
 * last completion's latency, and in the tooltip the error and the ways out.
 */
import * as vscode from "vscode";

export type State = "starting" | "loading" | "ready" | "error" | "stopped" | "missing" | "off";

/** What became of the suggestions, as the server counts them (in memory only). */
export interface AcceptanceCounts {
  shown: number;
  accepted: number;
  partlyAccepted: number;
  acceptedChars: number;
  acceptedAlternatives?: number;
}

/** The params of the server's `fimLsp/status` notification. */
export interface StatusParams {
  /** `loading`, `ready` or `error` are shown; anything else (the server's `idle`) is ignored. */
  state: string;
  message?: string;
  latencyMs?: number | null;
  acceptance?: AcceptanceCounts;
}

/** One line for people: `12 shown · 5 accepted (42%) · 3 partly accepted · 310 characters accepted`. */
export function describeAcceptance(counts: AcceptanceCounts | undefined): string {
  if (counts === undefined || counts.shown === 0) {
    return "No suggestion shown yet";
  }
  const rate = Math.round((100 * counts.accepted) / counts.shown);
  return (
    `${counts.shown} shown · ${counts.accepted} accepted (${rate}%) · ` +
    `${counts.partlyAccepted} partly accepted · ${counts.acceptedChars} characters accepted`
  );
}

const ICONS: Record<State, string> = {
  starting: "$(loading~spin)",
  loading: "$(loading~spin)",
  ready: "$(sparkle)",
  error: "$(error)",
  stopped: "$(error)",
  missing: "$(warning)",
  off: "$(circle-slash)",
};

const WORDS: Record<State, string> = {
  starting: "starting the server",
  loading: "loading the model",
  ready: "ready",
  error: "error",
  stopped: "the server stopped",
  missing: "server not found",
  off: "completions off",
};

export class StatusItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: State = "starting";
  private message = "";
  private latencyMs: number | undefined;
  private enabled = true;
  /** The server's last acceptance counts. */
  acceptance: AcceptanceCounts | undefined;

  constructor(enabled: boolean) {
    this.enabled = enabled;
    this.item = vscode.window.createStatusBarItem("fimLsp.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "fim-lsp";
    this.item.command = "fimLsp.showMenu";
    this.render();
    this.item.show();
  }

  /** What the item shows: the server's state, or `off` while the user has completions switched off. */
  get state(): State {
    const quiet = this.server === "starting" || this.server === "loading" || this.server === "ready";
    return !this.enabled && quiet ? "off" : this.server;
  }

  get detail(): { state: State; message: string; latencyMs: number | undefined } {
    return { state: this.state, message: this.message, latencyMs: this.latencyMs };
  }

  /** Record the server's state; `latencyMs` undefined keeps the last one. */
  set(state: Exclude<State, "off">, message = "", latencyMs?: number): void {
    this.server = state;
    this.message = message;
    if (latencyMs !== undefined) {
      this.latencyMs = latencyMs;
    }
    this.render();
  }

  /** Apply a `fimLsp/status` notification. */
  fromServer(params: StatusParams): void {
    const state = params.state;
    if (state !== "loading" && state !== "ready" && state !== "error") {
      return;
    }
    const latency = typeof params.latencyMs === "number" ? params.latencyMs : undefined;
    if (typeof params.acceptance === "object" && typeof params.acceptance.shown === "number") {
      this.acceptance = params.acceptance;
    }
    this.set(state, params.message ?? "", latency);
  }

  /** Completions switched on or off by the user. */
  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.render();
  }

  private render(): void {
    const state = this.state;
    const latency = state === "ready" && this.latencyMs !== undefined ? ` ${Math.round(this.latencyMs)} ms` : "";
    this.item.text = `${ICONS[state]} fim-lsp${latency}`;
    const bad = state === "error" || state === "stopped" || state === "missing";
    this.item.backgroundColor = bad ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.isTrusted = {
      enabledCommands: ["fimLsp.showLog", "fimLsp.restart", "fimLsp.toggle", "workbench.action.openSettings"],
    };
    tooltip.appendMarkdown(`**fim-lsp**: ${WORDS[state]}`);
    if (this.latencyMs !== undefined) {
      tooltip.appendMarkdown(` · last completion ${Math.round(this.latencyMs)} ms`);
    }
    if (this.message !== "") {
      tooltip.appendMarkdown("\n\n");
      tooltip.appendText(this.message);
    }
    if (this.acceptance !== undefined) {
      tooltip.appendMarkdown("\n\n");
      tooltip.appendText(`Suggestions: ${describeAcceptance(this.acceptance)}`);
    }
    const settings = encodeURIComponent(JSON.stringify(["fimLsp"]));
    tooltip.appendMarkdown(
      "\n\n[$(output) Show log](command:fimLsp.showLog) · [$(debug-restart) Restart](command:fimLsp.restart) · " +
        `[$(circle-slash) Toggle](command:fimLsp.toggle) · [$(gear) Settings](command:workbench.action.openSettings?${settings})`,
    );
    this.item.tooltip = tooltip;
  }

  dispose(): void {
    this.item.dispose();
  }
}
