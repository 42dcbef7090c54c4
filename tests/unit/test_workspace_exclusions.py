"""The `exclude` setting in the workspace index: an excluded file is never read, an excluded open buffer
never enters the overlay, and no snippet of either reaches a prompt, whatever `.gitignore` says."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fim_lsp.exclusions import Exclusions
from fim_lsp.workspace import index as index_module
from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.session import WorkspaceSession
from tests.unit.workspace_samples import write

KEY = "sk-live-4f9a8c7e"
SECRETS_PY = f'''"""Keys for the payment provider."""

API_KEY = "{KEY}"


def api_key_for(region: str) -> str:
    """The API key of a region: {KEY} everywhere for now."""
    return API_KEY
'''
SETTINGS_PY = """from secrets import API_KEY, api_key_for

PROVIDER = "stripe"


def provider_key(region):
    return api_key_for(region)


def headers(region):
    key = """


def tokens(text: str) -> int:
    return len(text) // 4 + 1


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path, "app/secrets.py", SECRETS_PY)
    write(tmp_path, "app/settings.py", SETTINGS_PY)
    write(tmp_path, "app/.aws/profile.py", f"TOKEN = '{KEY}'\n")
    write(tmp_path, "app/deploy.tfvars", f'api_key = "{KEY}"\n')
    # The ignore rules take the secrets back: they must not matter.
    write(tmp_path, ".gitignore", "!secrets.py\n!.aws/\n")
    return tmp_path


def started(session: WorkspaceSession, folder: Path) -> WorkspaceSession:
    """`session` indexing `folder`, once its background build has ended."""
    built = threading.Event()
    session.start([str(folder)], finished=built.set)
    assert built.wait(30)
    return session


def read_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the index reads from the disk, from now on."""
    seen: list[str] = []
    real = index_module.read_source

    def recording(path: str, max_bytes: int) -> str:
        seen.append(path)
        return real(path, max_bytes)

    monkeypatch.setattr(index_module, "read_source", recording)
    return seen


def test_an_excluded_file_is_never_read_into_the_index(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    seen = read_paths(monkeypatch)
    index = WorkspaceIndex()
    index.add_folder(workspace)
    index.build()
    assert [Path(p).name for p in seen] == ["settings.py"]
    assert index.get(str(workspace / "app" / "secrets.py")) is None
    # What the file watcher does when the file changes on disk: still not read.
    index.update_file(str(workspace / "app" / "secrets.py"))
    index.scan_tree(str(workspace / "app"))
    assert [Path(p).name for p in seen] == ["settings.py"]
    assert index.get(str(workspace / "app" / "secrets.py")) is None


def test_an_excluded_open_buffer_never_enters_the_overlay(workspace: Path) -> None:
    index = WorkspaceIndex()
    index.add_folder(workspace)
    index.build()
    path = str(workspace / "app" / "secrets.py")
    index.set_buffer(path, SECRETS_PY + "\ndef rotate():\n    pass\n")
    index.note_edit(path, 3)
    index.refresh()
    assert index.get(path) is None
    scratch = str(workspace.parent / "scratch" / ".env")  # outside every folder: judged by its name
    index.set_buffer(scratch, f"TOKEN={KEY}\n")
    index.refresh()
    assert index.get(scratch) is None


def test_no_snippet_of_an_excluded_file_reaches_a_prompt(workspace: Path) -> None:
    session = started(WorkspaceSession(), workspace)
    try:
        session.opened(str(workspace / "app" / "secrets.py"), SECRETS_PY)
        session.changed(str(workspace / "app" / "secrets.py"), SECRETS_PY + "# edited\n", [2])
        path = str(workspace / "app" / "settings.py")
        context = session.context_for(path, SETTINGS_PY, len(SETTINGS_PY), "python")
        assert context is not None
        snippets = list(context.snippets(2000, tokens))
        assert all(KEY not in snippet.text for snippet in snippets), snippets
        assert all("secrets" not in snippet.path for snippet in snippets), snippets
    finally:
        session.stop()


def test_without_the_exclusion_the_same_workspace_would_quote_the_key(workspace: Path) -> None:
    """The check above can fail: with nothing excluded, the imported module's definitions are quoted."""
    session = started(WorkspaceSession(exclusions=Exclusions([])), workspace)
    try:
        path = str(workspace / "app" / "settings.py")
        context = session.context_for(path, SETTINGS_PY, len(SETTINGS_PY), "python")
        assert context is not None
        assert any(KEY in snippet.text for snippet in context.snippets(2000, tokens))
    finally:
        session.stop()


def test_the_patterns_are_the_sessions_own(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = read_paths(monkeypatch)
    index = WorkspaceIndex(exclusions=Exclusions(["settings.*"]))
    index.add_folder(workspace)
    index.build()
    assert sorted(Path(p).name for p in seen) == ["profile.py", "secrets.py"]
