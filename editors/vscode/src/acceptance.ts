/**
 * What became of the suggestions: the extension tells the server which item is on screen
 * (`fimLsp/didShowCompletion`, also after cycling: the server's typed-through answers then follow it)
 * and what a partial accept took (`fimLsp/didPartiallyAcceptCompletion`), in the shapes of Copilot's
 * `textDocument/` messages; accepting a whole item runs the item's own command. The server counts in
 * memory only.
 *
 * VS Code tells a marketplace extension neither which inline item it draws nor what a partial accept
 * inserted (that API is proposed, open to built-in extensions only), so the extension keeps the items
 * the server last answered for the active document, takes the first as the one drawn, follows its own
 * next/previous commands (bound to VS Code's keys for them), and measures what its own word and line
 * accepts inserted. Cycling through the command palette instead of the keys is not seen.
 */
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

/** The command the server gives each item: VS Code runs it once the whole item is inserted. */
const ACCEPT_COMMAND = "fim-lsp.didAcceptCompletion";

type Answer = vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined;

function textOf(item: vscode.InlineCompletionItem): string {
  return typeof item.insertText === "string" ? item.insertText : item.insertText.value;
}

/** The item as the server sent it (what it reads back: the text and the accept command's argument). */
function wireItem(item: vscode.InlineCompletionItem): object | undefined {
  const command = item.command;
  if (command?.command !== ACCEPT_COMMAND) {
    return undefined; // another provider's item
  }
  return {
    insertText: textOf(item),
    command: { title: command.title, command: command.command, arguments: command.arguments ?? [] },
  };
}

export class Acceptance {
  private uri: string | undefined;
  private items: vscode.InlineCompletionItem[] = [];
  private index = 0;
  private reported: vscode.InlineCompletionItem | undefined;
  /** The step of a next/previous whose candidates VS Code is still fetching. */
  private cycling: 1 | -1 | undefined;

  constructor(private readonly client: () => LanguageClient | undefined) {}

  /** The server answered for `document`: VS Code draws the first item, unless the same candidates are
   * already on screen (VS Code asks again when the user cycles, and keeps the one selected). Typing gets
   * the first candidate alone; next/previous makes VS Code ask on purpose, which brings the others, and
   * then shows the next of them. */
  answered(document: vscode.TextDocument, answer: Answer, token: vscode.CancellationToken): void {
    if (token.isCancellationRequested) {
      return;
    }
    const items = answer ? (Array.isArray(answer) ? answer : answer.items) : [];
    const uri = document.uri.toString();
    const same =
      uri === this.uri &&
      items.length === this.items.length &&
      items.every((item, i) => textOf(item) === textOf(this.items[i]));
    if (same) {
      return;
    }
    this.uri = uri;
    this.items = items;
    this.index = 0;
    const step = this.cycling;
    this.cycling = undefined;
    if (step !== undefined && items.length > 1) {
      this.index = (step + items.length) % items.length;
    }
    if (items.length > 0) {
      this.shown(items[this.index]);
    }
  }

  /** Show the next (`1`) or previous (`-1`) suggestion, as VS Code's own command does. */
  async cycle(step: 1 | -1): Promise<void> {
    this.cycling = step;
    await vscode.commands.executeCommand(`editor.action.inlineSuggest.${step > 0 ? "showNext" : "showPrevious"}`);
    const count = this.items.length;
    if (this.cycling === undefined || count < 2 || !this.onActiveDocument()) {
      return; // moved by the answer to VS Code's request for the others, or that answer is still coming
    }
    this.cycling = undefined;
    this.index = (this.index + step + count) % count;
    this.shown(this.items[this.index]);
  }

  /** Accept the suggestion's next word or line, as VS Code's own commands do, and say how much it took. */
  async acceptPart(part: "word" | "line"): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const item = this.onActiveDocument() ? this.items[this.index] : undefined;
    const before = editor ? editor.document.offsetAt(editor.selection.active) : 0;
    const command = part === "word" ? "acceptNextWord" : "acceptNextLine";
    await vscode.commands.executeCommand(`editor.action.inlineSuggest.${command}`);
    if (editor === undefined || item === undefined) {
      return;
    }
    const accepted = editor.document.offsetAt(editor.selection.active) - before;
    const wire = wireItem(item);
    if (accepted > 0 && wire !== undefined) {
      void this.client()?.sendNotification("fimLsp/didPartiallyAcceptCompletion", {
        item: wire,
        acceptedLength: accepted,
      });
    }
  }

  private onActiveDocument(): boolean {
    return vscode.window.activeTextEditor?.document.uri.toString() === this.uri;
  }

  private shown(item: vscode.InlineCompletionItem): void {
    const wire = wireItem(item);
    if (item === this.reported || wire === undefined) {
      return;
    }
    this.reported = item;
    void this.client()?.sendNotification("fimLsp/didShowCompletion", { item: wire });
  }
}
