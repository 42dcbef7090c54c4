"""The `exclude` setting through `fim-lsp --stdio` with a remote engine, an OpenAI-compatible fake on
loopback that records every request: an open `.env` or secrets buffer gets no completion and its text
never reaches the engine, and a secret file of the workspace is never quoted in a prompt, even where the
workspace's `.gitignore` takes it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types

from tests.e2e.conftest import Editor, StartEditor
from tests.e2e.test_workspace import indexing_ended
from tests.fakes.fault_server import MODEL, FaultServer, Stream

KEY = "sk-live-51HxQ2eZvKYlo2C"
SECRETS_PY = f'''"""Keys for the payment provider."""

API_KEY = "{KEY}"


def api_key_for(region: str) -> str:
    """The key of a region."""
    return API_KEY
'''
MONEY_PY = '''def to_cents(amount: float) -> int:
    """The amount in cents, rounded half up."""
    return int(amount * 100 + 0.5)
'''
SETTINGS_PY = """from app.money import to_cents
from app.secrets import API_KEY, api_key_for


def charge(amount, region):
    key = api_key_for(region)
    cents = """
ENV = f"STRIPE_KEY={KEY}\nDEBUG="


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "secrets.py").write_text(SECRETS_PY)
    (app / "money.py").write_text(MONEY_PY)
    (app / "settings.py").write_text(SETTINGS_PY)
    (app / ".env").write_text(ENV)
    # A .gitignore that takes the secrets back in: the exclusions hold whatever it says.
    (tmp_path / ".gitignore").write_text("!.env\n!secrets.py\n")
    return tmp_path


async def remote_editor(start_editor: StartEditor, server: FaultServer, folder: Path) -> Editor:
    engine = {"kind": "openai", "url": f"{server.url}/v1", "model": MODEL, "template": "qwen2.5-coder"}
    settings = {"engine": engine, "workspaceContext": True}
    editor = await start_editor(settings, progress=True, root_uri=folder.as_uri())
    await editor.wait_until("ready", timeout=60)
    await indexing_ended(editor.client)
    return editor


def prompts(server: FaultServer) -> list[str]:
    return [json.dumps(request.body) for request in server.requests_to("/v1/completions")]


async def test_an_excluded_buffer_never_reaches_the_engine(start_editor, workspace: Path):
    with FaultServer() as server:
        server.default = Stream(("API", "_KEY"))
        editor = await remote_editor(start_editor, server, workspace)
        env_uri = (workspace / "app" / ".env").as_uri()
        editor.open(env_uri, ENV, language_id="dotenv")
        assert await editor.inline(env_uri, 1, len("DEBUG=")) == []
        secrets_uri = (workspace / "app" / "secrets.py").as_uri()
        editor.open(secrets_uri, SECRETS_PY)
        editor.change(secrets_uri, "\nSECOND_KEY = ", (8, 0), (8, 0))
        assert await editor.inline(secrets_uri, 9, len("SECOND_KEY = ")) == []
        assert prompts(server) == [], "no request may reach the engine for an excluded document"

        # A document that is not excluded is completed, and the prompt quotes the workspace (its
        # snippets are there), but never the secret file, neither from disk nor from its open buffer.
        uri = (workspace / "app" / "settings.py").as_uri()
        editor.open(uri, SETTINGS_PY)
        lines = SETTINGS_PY.split("\n")
        items = await editor.inline(uri, len(lines) - 1, len(lines[-1]))
        assert items, "the settings file is completed"
        sent = prompts(server)  # the completion's, and maybe the prefetch of what accepting it leads to
        assert sent and "def to_cents" in sent[0], "workspace snippets are in the prompt"
        for prompt in sent:
            assert KEY not in prompt and "def api_key_for" not in prompt and "SECOND_KEY" not in prompt


async def test_the_exclude_setting_is_the_users(start_editor, workspace: Path):
    """With the list emptied, the same workspace does quote the key (so the test above can fail), and
    a changed list takes effect without a restart."""
    with FaultServer() as server:
        editor = await remote_editor(start_editor, server, workspace)
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"fimLsp": {"exclude": []}})
        )
        await indexing_ended(editor.client, times=2)
        uri = (workspace / "app" / "settings.py").as_uri()
        editor.open(uri, SETTINGS_PY)
        lines = SETTINGS_PY.split("\n")
        await editor.inline(uri, len(lines) - 1, len(lines[-1]))
        assert any(KEY in prompt for prompt in prompts(server))
