// Drive VS Code (code-server in Chromium, through puppeteer-core) as a person would: open a file,
// put the cursor at the end of a line, type, wait for the ghost text the server suggests, take a
// screenshot, press Tab, save. Prints one JSON object with what it saw; the pytest side judges it.
//
// Environment: PUPPETEER_MODULE (path of puppeteer-core), CHROMIUM, URL (code-server with ?folder=),
// FILE_NAME (to open from the explorer), LINE (1-based), TYPE (keys typed there), SCREENSHOT (png path),
// TIMEOUT_MS. MODE=cycle: with several candidates, show the next one, accept a word of it, then a line,
// then the rest, and read the status menu's counts; MODE=bad-input: see badInput.
"use strict";

const puppeteer = require(process.env.PUPPETEER_MODULE);

const timeout = Number(process.env.TIMEOUT_MS || 120000);
const line = Number(process.env.LINE);
const steps = [];

function step(name) {
  steps.push({ name, at: Date.now() });
  process.stderr.write(`[vscode-drive] ${name}\n`);
}

/** The text of every status bar entry that mentions fim-lsp. */
async function statusText(page) {
  return page.$$eval(".statusbar-item", (items) =>
    items.map((i) => i.textContent.trim()).filter((t) => t.includes("fim-lsp")),
  );
}

/** The ghost text VS Code draws: inline decorations on the cursor line, then preview lines below (in
 * VS Code 1.99 these are syntax-highlighted `span.ghost-text` tokens, one `.view-line` per line). */
async function ghostText(page) {
  return page.evaluate(() => {
    const inline = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration")]
      .map((e) => e.textContent)
      .join("");
    const lines = new Map();
    for (const token of document.querySelectorAll(".monaco-editor span.ghost-text")) {
      const line = token.closest(".view-line") || token.parentElement;
      lines.set(line, (lines.get(line) || "") + token.textContent);
    }
    const below = [...lines.values()].join("\n");
    const text = below ? `${inline}\n${below}` : inline;
    return text.replace(/\u00a0/g, " ");
  });
}

async function waitFor(what, fn, ms = timeout) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The fim-lsp status item: its icon's codicon name and its accessible label. */
async function statusItem(page) {
  return page.$$eval(".statusbar-item", (items) => {
    const mine = items.find((i) => i.textContent.includes("fim-lsp"));
    if (!mine) return null;
    const icon = mine.querySelector(".codicon");
    const name = icon ? [...icon.classList].find((c) => c.startsWith("codicon-") && c !== "codicon") : "";
    return { icon: name, text: mine.textContent.trim(), label: mine.getAttribute("aria-label") || "" };
  });
}

/** Watch notification toasts: every distinct message, and the most shown at once per message. */
function watchToasts(page) {
  const seen = new Map();
  const timer = setInterval(async () => {
    try {
      const now = await page.$$eval(".notification-toast .notification-list-item-message", (es) =>
        es.map((e) => e.textContent.trim()),
      );
      const counts = new Map();
      for (const m of now) counts.set(m, (counts.get(m) || 0) + 1);
      for (const [m, n] of counts) seen.set(m, Math.max(seen.get(m) || 0, n));
    } catch {
      // the page is navigating or closing
    }
  }, 200);
  return { seen, stop: () => clearInterval(timer) };
}

/**
 * Bad input, one VS Code session: a server command that does not exist, then (by writing the
 * workspace's .vscode/settings.json, which VS Code watches; code-server does not notice edits of the
 * user settings file) the real server with a model that does not exist, then the real model, which
 * must load without a restart (workspace/didChangeConfiguration).
 */
async function badInput(page, result) {
  const fs = require("node:fs");
  const path = require("node:path");
  const settingsPath = process.env.WORKSPACE_SETTINGS;
  fs.mkdirSync(path.dirname(settingsPath), { recursive: true });
  const write = (model) =>
    fs.writeFileSync(
      settingsPath,
      JSON.stringify({ "fimLsp.server.command": process.env.SERVER, "fimLsp.model": model }),
    );
  const toasts = watchToasts(page);
  const waitIcon = async (what, icons) => {
    const item = await waitFor(what, async () => {
      const s = await statusItem(page);
      return s && icons.includes(s.icon) ? s : null;
    });
    await new Promise((r) => setTimeout(r, 3000)); // time for any repeated message to show up
    return item;
  };

  step("open workbench with a missing server command");
  await page.goto(process.env.URL, { waitUntil: "domcontentloaded", timeout });
  await page.waitForSelector(".statusbar", { timeout });
  result.missingStatus = await waitIcon("the not-found status", ["codicon-warning"]);
  result.missingToasts = Object.fromEntries(toasts.seen);

  step("point at the real server, with a model that does not exist");
  toasts.seen.clear();
  write(process.env.BAD_MODEL);
  result.modelStatus = await waitIcon("the model error status", ["codicon-error"]);
  result.modelToasts = Object.fromEntries(toasts.seen);

  step("switch to the real model");
  write(process.env.GOOD_MODEL);
  result.readyStatus = await waitIcon("ready after the settings change", ["codicon-sparkle"]);
  toasts.stop();
  await page.screenshot({ path: process.env.SCREENSHOT });
  step("done");
}

/** Press `key` with the modifiers held, as a person does. */
async function chord(page, modifiers, key) {
  for (const m of modifiers) await page.keyboard.down(m);
  await page.keyboard.press(key);
  for (const m of [...modifiers].reverse()) await page.keyboard.up(m);
}

/** Open FILE_NAME from the explorer and wait for its editor. */
async function openFile(page) {
  step("open the file from the explorer");
  const row = await waitFor("the file in the explorer", async () => {
    for (const r of await page.$$(".explorer-folders-view .monaco-list-row")) {
      const label = await r.evaluate((e) => e.textContent.trim());
      if (label === process.env.FILE_NAME) return r;
    }
    return null;
  });
  await row.click({ count: 2 });
  await page.waitForSelector(".monaco-editor .view-lines .view-line", { visible: true, timeout });
}

/** Open the workbench and the file, wait for the server to be ready, put the cursor at LINE's end. */
async function openAtLineEnd(page, result) {
  step("open workbench");
  await page.goto(process.env.URL, { waitUntil: "domcontentloaded", timeout });
  await page.waitForSelector(".monaco-workbench", { timeout });
  await page.waitForSelector(".statusbar", { timeout });
  await openFile(page);
  step("wait for the server to be ready");
  result.statusReady = await waitFor("fim-lsp ready in the status bar", async () => {
    const s = await statusItem(page);
    return s && s.icon === "codicon-sparkle" ? s : null;
  });
  await page.click(".monaco-editor .view-lines");
  await chord(page, ["Control"], "Home");
  for (let i = 1; i < line; i++) await page.keyboard.press("ArrowDown");
  await page.keyboard.press("End");
}

/** Wait until the ghost text on screen is `expected` (or, given a function, satisfies it). */
async function ghostBecomes(page, what, expected) {
  const ok = typeof expected === "function" ? expected : (g) => g === expected;
  let last = "";
  try {
    return await waitFor(
      what,
      async () => {
        last = await ghostText(page);
        return ok(last) ? last || true : null;
      },
      20000,
    );
  } catch (error) {
    throw new Error(`${error.message}; the ghost text was ${JSON.stringify(last)}`);
  }
}

/**
 * Several candidates: the first appears, Alt+] shows the second, Ctrl+Right accepts a word of it,
 * Ctrl+Alt+Right the rest of its line (with the line break, as VS Code's accept-line does), Tab the
 * rest; then the status menu's counts are read.
 */
async function cycle(page, result) {
  const expected = JSON.parse(process.env.EXPECT);
  await openAtLineEnd(page, result);
  step("type, and wait for the first candidate");
  await page.keyboard.type(process.env.TYPE || "", { delay: 50 });
  result.first = await ghostBecomes(page, "the first candidate", expected[0]);
  step("next suggestion");
  await chord(page, ["Alt"], "BracketRight");
  result.second = await ghostBecomes(page, "the second candidate", expected[1]);
  await page.screenshot({ path: process.env.SCREENSHOT });
  step("accept a word");
  await chord(page, ["Control"], "ArrowRight");
  result.afterWord = await ghostBecomes(
    page,
    "what the word accept left",
    (g) => g !== "" && g.length < expected[1].length && expected[1].endsWith(g),
  );
  await new Promise((r) => setTimeout(r, 1000)); // the answer VS Code asks for after the change
  step("accept a line");
  await chord(page, ["Control", "Alt"], "ArrowRight");
  result.afterLine = await ghostBecomes(
    page,
    "what the line accept left",
    (g) => g !== "" && g.length < result.afterWord.length && expected[1].endsWith(g),
  );
  await new Promise((r) => setTimeout(r, 1000));
  step("accept the rest with Tab and save");
  // Where what is left starts with indentation, VS Code's Tab indents first (as VS Code does for any
  // inline suggestion whose indentation is less than a tab); the next Tab accepts the rest.
  for (let tabs = 0; tabs < 3 && (await ghostText(page)) !== ""; tabs++) {
    await page.keyboard.press("Tab");
    await new Promise((r) => setTimeout(r, 1000));
  }
  await ghostBecomes(page, "the ghost text to be accepted", "");
  await chord(page, ["Control"], "s");
  await new Promise((r) => setTimeout(r, 1500));
  step("open the status menu");
  const item = await page.$$(".statusbar-item").then(async (items) => {
    for (const i of items) if ((await i.evaluate((e) => e.textContent)).includes("fim-lsp")) return i;
    return null;
  });
  await item.click();
  result.menu = await waitFor("the status menu", async () => {
    const rows = await page.$$eval(".quick-input-list .monaco-list-row", (rs) => rs.map((r) => r.textContent));
    return rows.some((r) => r.includes("shown")) ? rows : null;
  });
  await page.keyboard.press("Escape");
  step("done");
}

async function main() {
  const result = { steps };
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"],
    defaultViewport: { width: 1400, height: 900 },
  });
  const page = await browser.newPage();
  page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
  try {
    if (process.env.MODE === "bad-input") {
      await badInput(page, result);
      return;
    }
    if (process.env.MODE === "cycle") {
      await cycle(page, result);
      return;
    }
    step("open workbench");
    await page.goto(process.env.URL, { waitUntil: "domcontentloaded", timeout });
    await page.waitForSelector(".monaco-workbench", { timeout });
    await page.waitForSelector(".statusbar", { timeout });

    step("wait for the extension's status item");
    result.statusAtStart = await waitFor("the fim-lsp status item", () =>
      statusText(page).then((t) => (t.length ? t : null)),
    );

    await openFile(page);

    step("wait for the model to be ready");
    result.statusReady = await waitFor("fim-lsp ready in the status bar", () =>
      page.$$eval(".statusbar-item", (items) => {
        const mine = items.filter((i) => i.textContent.includes("fim-lsp"));
        if (mine.some((i) => i.querySelector(".codicon-error, .codicon-warning"))) {
          return { failed: mine.map((i) => i.getAttribute("aria-label") || i.textContent).join(" | ") };
        }
        return mine.some((i) => i.querySelector(".codicon-sparkle")) ? mine.map((i) => i.textContent.trim()) : null;
      }),
    );
    if (result.statusReady.failed) throw new Error(`fim-lsp reports a problem: ${result.statusReady.failed}`);

    step("go to the line and ask for a suggestion");
    await page.click(".monaco-editor .view-lines");
    await page.keyboard.down("Control");
    await page.keyboard.press("Home");
    await page.keyboard.up("Control");
    for (let i = 1; i < line; i++) await page.keyboard.press("ArrowDown");
    await page.keyboard.press("End");
    // Type as a person does; each keystroke makes VS Code ask for an inline completion
    // (automatic trigger). If an answer comes back empty, type the character again.
    const typed = process.env.TYPE || "";
    const deadline = Date.now() + timeout;
    let ghost = "";
    while (!ghost && Date.now() < deadline) {
      await page.keyboard.type(typed, { delay: 50 });
      const until = Date.now() + 30000;
      while (!ghost && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        ghost = await ghostText(page);
      }
      if (!ghost) for (let i = 0; i < typed.length; i++) await page.keyboard.press("Backspace");
    }
    if (!ghost) throw new Error("no ghost text appeared");
    // Let the decoration settle (multi-line previews render in a second pass).
    await new Promise((r) => setTimeout(r, 500));
    result.ghost = await ghostText(page);
    result.statusAfterCompletion = await statusText(page);
    step("screenshot");
    await page.screenshot({ path: process.env.SCREENSHOT });

    step("accept with Tab and save");
    await page.keyboard.press("Tab");
    await waitFor("the ghost text to be accepted", async () => (await ghostText(page)) === "", 10000);
    await page.keyboard.down("Control");
    await page.keyboard.press("s");
    await page.keyboard.up("Control");
    await new Promise((r) => setTimeout(r, 1500));
    result.statusAtEnd = await statusText(page);
    step("done");
  } catch (error) {
    result.error = String(error && error.stack ? error.stack : error);
    try {
      await page.screenshot({ path: process.env.SCREENSHOT.replace(/\.png$/, "-failure.png") });
      result.statusAtFailure = await statusText(page);
      result.notifications = await page.$$eval(".notification-list-item-message", (items) =>
        items.map((i) => i.textContent),
      );
    } catch (inner) {
      result.screenshotError = String(inner);
    }
  } finally {
    await browser.close();
    process.stdout.write(JSON.stringify(result) + "\n");
  }
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ error: String(error), steps }) + "\n");
  process.exit(1);
});
