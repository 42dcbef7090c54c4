/**
 * The server's settings as VS Code holds them, turned into the camelCase object `fim-lsp` reads
 * (its `Settings` tree): sent as `initializationOptions` and as the `fimLsp` section of
 * `workspace/didChangeConfiguration`.
 *
 * Only the keys the server knows are sent: `fimLsp.enable` and `fimLsp.server.*` belong to the
 * extension, and the server reports keys it does not know.
 */
import * as vscode from "vscode";

export const SECTION = "fimLsp";

/** Top-level server settings, in the order `fim_lsp/config.py` declares them. */
const SERVER_KEYS = [
  "model",
  "adapter",
  "threads",
  "gpuLayers",
  "contextSize",
  "contextBudget",
  "suffixShare",
  "maxNewTokens",
  "timeBudgetMs",
  "promptMemoryMb",
  "cacheMemoryMb",
  "reuse",
  "prefetch",
  "alternatives",
  "fimOrder",
  "enabledLanguages",
  "exclude",
  "logLevel",
  "workspaceContext",
  "workspaceContextShare",
] as const;

const ENGINE_KEYS = ["kind", "url", "model", "template", "apiKeyEnv", "timeout", "verifyTls"] as const;

export type ServerSettings = Record<string, unknown> & { engine: Record<string, unknown> };

/** The server settings in force (user, workspace and folder values over package.json's defaults). */
export function serverSettings(): ServerSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const settings: ServerSettings = { engine: {} };
  for (const key of SERVER_KEYS) {
    settings[key] = config.get(key);
  }
  for (const key of ENGINE_KEYS) {
    settings.engine[key] = config.get(`engine.${key}`);
  }
  return settings;
}

/** Whether a configuration change touches what the server reads. */
export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
  return (
    SERVER_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`)) ||
    event.affectsConfiguration(`${SECTION}.engine`)
  );
}

/** Whether ghost text is switched on. */
export function completionsEnabled(): boolean {
  return vscode.workspace.getConfiguration(SECTION).get<boolean>("enable", true);
}
