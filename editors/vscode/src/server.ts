/**
 * Where the `fim-lsp` executable is: the `fimLsp.server.command` setting, else `fim-lsp` on PATH,
 * else a workspace folder's `.venv` (where `make setup` puts it in the fim-lsp repository).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";

import { SECTION } from "./settings";

export interface ServerCommand {
  command: string;
  args: string[];
  /** How it was found, for the log and the status tooltip. */
  source: string;
}

export interface NotFound {
  /** Every place that was looked at. */
  tried: string[];
}

const EXE = process.platform === "win32" ? "fim-lsp.exe" : "fim-lsp";

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir !== "" && isExecutable(path.join(dir, name))) {
      return path.join(dir, name);
    }
  }
  return undefined;
}

/** Find the server command, or say where it was looked for. */
export function findServer(): ServerCommand | NotFound {
  const config = vscode.workspace.getConfiguration(SECTION);
  const args = config.get<string[]>("server.args", ["--stdio"]);
  const configured = config.get<string>("server.command", "").trim();
  if (configured !== "") {
    const resolved = path.isAbsolute(configured) ? configured : onPath(configured);
    if (resolved !== undefined && isExecutable(resolved)) {
      return { command: resolved, args, source: "setting fimLsp.server.command" };
    }
    return { tried: [`fimLsp.server.command = ${configured}`] };
  }
  const fromPath = onPath(EXE);
  if (fromPath !== undefined) {
    return { command: fromPath, args, source: "PATH" };
  }
  const tried = ["fim-lsp on PATH"];
  const bin = process.platform === "win32" ? "Scripts" : "bin";
  for (const folder of vscode.workspace.workspaceFolders ?? []) {
    if (folder.uri.scheme !== "file") {
      continue;
    }
    const candidate = path.join(folder.uri.fsPath, ".venv", bin, EXE);
    if (isExecutable(candidate)) {
      return { command: candidate, args, source: `workspace venv (${folder.name})` };
    }
    tried.push(candidate);
  }
  return { tried };
}

export function isFound(found: ServerCommand | NotFound): found is ServerCommand {
  return "command" in found;
}
