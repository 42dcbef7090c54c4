"""The workspace: an index of the folders the editor opened, and snippets from it for the prompt.

- `files`: which files of a folder are indexed (`.gitignore`, vendored and generated folders, binaries,
  size caps) and reading one safely.
- `symbols`: definitions in a file (tree-sitter), names used and imported in a piece of code.
- `folders`: the workspace folders, which one holds a file, how a file is named in a prompt.
- `entry`: one indexed file (its definitions packed, its text compressed).
- `bm25`: similar chunks by BM25 over blocks of rows; `postings` stores its inverted index compactly.
- `recent`: the rows the user edited lately.
- `index`: `WorkspaceIndex`, which puts those together: built in the background and kept current by
  `update_file` (disk) and `set_buffer` (open editor buffers).
- `watcher`: `WorkspaceWatcher`, watchdog events fed to the index.
- `retrieval`: `snippets_for`, the ranked, deduplicated snippets for a cursor within a token budget.

Nothing here imports pygls: the server wires it (folders, buffers, progress) and the pipeline calls
`snippets_for`.
"""

from fim_lsp.workspace.files import IndexLimits
from fim_lsp.workspace.index import IndexStats, WorkspaceIndex
from fim_lsp.workspace.retrieval import SnippetRetriever, snippets_for
from fim_lsp.workspace.watcher import WorkspaceWatcher

__all__ = [
    "IndexLimits",
    "IndexStats",
    "SnippetRetriever",
    "WorkspaceIndex",
    "WorkspaceWatcher",
    "snippets_for",
]
