/**
 * fim-lsp for VS Code: starts `fim-lsp --stdio` through vscode-languageclient and shows its ghost
 * text (LSP 3.18 `textDocument/inlineCompletion`, a proposed feature in languageclient 10).
 *
 * `activate` builds the client and the status bar item; `deactivate` stops the client. Everything a
 * user can change is a setting declared in package.json.
 */
import * as vscode from "vscode";
import {
  CloseAction,
  type CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandler,
  type ErrorHandlerResult,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

import { Acceptance } from "./acceptance";
import { findServer, isFound } from "./server";
import { affectsServer, completionsEnabled, SECTION, serverSettings } from "./settings";
import { describeAcceptance, type StatusParams, StatusItem } from "./status";

/** A server that dies twice within this window is left stopped rather than restarted again. */
const CRASH_WINDOW_MS = 3 * 60 * 1000;

class Controller implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private crashes: number[] = [];
  private starting: Promise<void> | undefined;
  readonly acceptance = new Acceptance(() => this.client);

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly status: StatusItem,
  ) {}

  /** Start the server, unless it cannot be found (then say so once, in the status bar and a message). */
  async start(): Promise<void> {
    const found = findServer();
    if (!isFound(found)) {
      const message = `fim-lsp was not found (looked for: ${found.tried.join(", ")}).`;
      this.log.error(message);
      this.status.set("missing", `${message} Install fim-lsp or set fimLsp.server.command.`);
      void vscode.window
        .showErrorMessage(`${message} Install fim-lsp or set the fimLsp.server.command setting.`, "Open Settings")
        .then((choice) => {
          if (choice === "Open Settings") {
            void vscode.commands.executeCommand("workbench.action.openSettings", "fimLsp.server");
          }
        });
      return;
    }
    this.log.info(`starting ${found.command} ${found.args.join(" ")} (found via ${found.source})`);
    this.status.set("starting", `${found.command} (${found.source})`);
    const serverOptions: ServerOptions = {
      command: found.command,
      args: found.args,
      transport: TransportKind.stdio,
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: serverSettings(),
      outputChannel: this.log,
      errorHandler: this.errorHandler(),
      initializationFailedHandler: (error) => {
        this.log.error(`initialize failed: ${String(error)}`);
        this.status.set("error", `The server did not initialize: ${String(error)}`);
        return false;
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          if (!completionsEnabled()) {
            return null;
          }
          const answer = await next(document, position, context, token);
          this.acceptance.answered(document, answer, token);
          return answer;
        },
        // The server's plain completion item repeats the ghost text for clients without inline
        // completion; here it would only duplicate it in the suggest widget and double the work.
        provideCompletionItem: () => null,
      },
    };
    const client = new LanguageClient("fimLsp", "fim-lsp", serverOptions, clientOptions);
    client.registerProposedFeatures();
    client.onNotification("fimLsp/status", (params: StatusParams) => this.status.fromServer(params));
    this.client = client;
    try {
      await client.start();
      if (this.status.detail.state === "starting") {
        this.status.set("loading", "The server is up; the model is loading.");
      }
    } catch (error) {
      this.log.error(`could not start the server: ${String(error)}`);
      this.status.set("error", `Could not start ${found.command}: ${String(error)}`);
    }
  }

  /** Restart once after a crash; after a second crash within the window, stop and tell the user once. */
  private errorHandler(): ErrorHandler {
    return {
      error: (error, _message, count): ErrorHandlerResult => {
        this.log.error(`connection error: ${error.message}`);
        return { action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
      },
      closed: (): CloseHandlerResult => {
        const now = Date.now();
        this.crashes = this.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
        this.crashes.push(now);
        if (this.crashes.length < 2) {
          this.log.warn("the server stopped unexpectedly; restarting it");
          this.status.set("starting", "Restarting after the server stopped unexpectedly.");
          return { action: CloseAction.Restart, handled: true };
        }
        const message = "fim-lsp stopped unexpectedly twice; completions are off until you restart it.";
        this.log.error(message);
        this.status.set("stopped", `${message} The log says why.`);
        void vscode.window.showErrorMessage(message, "Show Log", "Restart").then((choice) => {
          if (choice === "Show Log") {
            this.log.show();
          } else if (choice === "Restart") {
            void this.restart();
          }
        });
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    };
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    try {
      await client.stop(5000);
    } catch (error) {
      this.log.warn(`stopping the server: ${String(error)}`);
    }
  }

  async restart(): Promise<void> {
    if (this.starting !== undefined) {
      return this.starting;
    }
    this.starting = (async () => {
      await this.stop();
      this.crashes = [];
      await this.start();
    })().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (event.affectsConfiguration(`${SECTION}.enable`)) {
      this.status.setEnabled(completionsEnabled());
      if (!completionsEnabled()) {
        await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
      }
    }
    if (event.affectsConfiguration(`${SECTION}.server`)) {
      this.log.info("server command changed; restarting");
      await this.restart();
      return;
    }
    if (affectsServer(event) && this.client?.isRunning()) {
      await this.client.sendNotification(DidChangeConfigurationNotification.type, {
        settings: { [SECTION]: serverSettings() },
      });
    }
  }

  async showMenu(): Promise<void> {
    const detail = this.status.detail;
    const items: (vscode.QuickPickItem & { run: () => unknown })[] = [
      {
        label: completionsEnabled() ? "$(circle-slash) Turn completions off" : "$(check) Turn completions on",
        run: () => vscode.commands.executeCommand("fimLsp.toggle"),
      },
      { label: "$(sparkle) Suggest here", run: () => vscode.commands.executeCommand("fimLsp.trigger") },
      { label: "$(debug-restart) Restart the server", run: () => this.restart() },
      { label: "$(output) Show the log", run: () => this.log.show() },
      {
        label: "$(gear) Settings",
        run: () => vscode.commands.executeCommand("workbench.action.openSettings", SECTION),
      },
      {
        label: `$(graph) ${describeAcceptance(this.status.acceptance)}`,
        description: "counted by the server, in memory only",
        run: () => undefined,
      },
    ];
    const title = `fim-lsp: ${detail.state}${detail.message !== "" ? ` — ${detail.message}` : ""}`;
    const choice = await vscode.window.showQuickPick(items, { title, placeHolder: "fim-lsp" });
    await choice?.run();
  }

  dispose(): void {
    void this.stop();
  }
}

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("fim-lsp", { log: true });
  const status = new StatusItem(completionsEnabled());
  const ctl = new Controller(log, status);
  controller = ctl;
  context.subscriptions.push(
    log,
    status,
    vscode.commands.registerCommand("fimLsp.toggle", async () => {
      const enabled = !completionsEnabled();
      await vscode.workspace
        .getConfiguration(SECTION)
        .update("enable", enabled, vscode.ConfigurationTarget.Global);
      void vscode.window.setStatusBarMessage(`fim-lsp: completions ${enabled ? "on" : "off"}`, 3000);
    }),
    vscode.commands.registerCommand("fimLsp.trigger", () =>
      vscode.commands.executeCommand("editor.action.inlineSuggest.trigger"),
    ),
    vscode.commands.registerCommand("fimLsp.restart", () => ctl.restart()),
    vscode.commands.registerCommand("fimLsp.showLog", () => log.show()),
    vscode.commands.registerCommand("fimLsp.showMenu", () => ctl.showMenu()),
    vscode.commands.registerCommand("fimLsp.showNext", () => ctl.acceptance.cycle(1)),
    vscode.commands.registerCommand("fimLsp.showPrevious", () => ctl.acceptance.cycle(-1)),
    vscode.commands.registerCommand("fimLsp.acceptNextWord", () => ctl.acceptance.acceptPart("word")),
    vscode.commands.registerCommand("fimLsp.acceptNextLine", () => ctl.acceptance.acceptPart("line")),
    vscode.workspace.onDidChangeConfiguration((event) => ctl.onConfigurationChanged(event)),
  );
  await ctl.start();
}

export async function deactivate(): Promise<void> {
  const ctl = controller;
  controller = undefined;
  await ctl?.stop();
}
