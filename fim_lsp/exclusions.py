"""Files whose text fim-lsp never reads: secrets, keys and credentials (the `exclude` setting).

A document that matches gets no completion (its request is answered empty before any engine sees its
text), a workspace file that matches is never read into the index, and an open buffer that matches never
enters the index's overlay, so no snippet of it reaches a prompt. The rules hold whatever `.gitignore`
says: secrets are often ignored, but as often tracked by mistake, or not yet ignored.

Patterns are `.gitignore` globs, matched without regard to case (`Secrets.swift` and `.ENV` are caught on
any file system) against the path relative to the workspace folder that holds the file, or against the
whole path for a file outside every folder:

- a pattern without a slash matches a file or folder name at any depth (`*.pem`, `.env`); a folder that
  matches takes everything under it (`.ssh/` is every file in any `.ssh` folder);
- a pattern with a slash before its end is anchored at the folder's root (`config/prod.yml`);
- `!pattern` takes back what an earlier pattern excluded; `**` crosses folders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import pathspec

#: The default `exclude`: what a careful user expects never to leave their disk. Some patterns cover
#: others (`*secret*` covers `secrets.*`); each stays so that removing a broad one keeps the narrow one.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    # Environment files (direnv's `.envrc` exports them too).
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    # Private keys, certificates bundled with their keys, key stores.
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.p8",
    "*.ppk",
    "*.keystore",
    "*.jks",
    "*.jceks",
    # SSH and GPG keys, wherever they are.
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh/",
    ".gnupg/",
    # Tools' credential files and folders.
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".git-credentials",
    ".pgpass",
    ".htpasswd",
    ".vault-token",
    "auth.json",
    ".aws/",
    ".docker/",
    ".kube/",
    "*service?account*.json",
    # Infrastructure variables and state, which hold secrets in plain text.
    "*.tfvars",
    "*.tfstate",
    "*.tfstate.*",
    # Anything named for secrets or credentials.
    "secrets.*",
    "*secret*",
    "*credential*",
)


def _spec(patterns: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """The compiled patterns; ValueError names the first one that is not a glob."""
    lines = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(f"expected a glob pattern, not {pattern!r}")
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern.lower()])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a glob pattern: {pattern!r}") from exc
        lines.append(pattern.lower())
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _one_regex(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    """All of `spec`'s patterns as one regular expression, when none takes a file back (`!`, whose
    meaning depends on the order): matching a path then costs one search instead of one per pattern,
    which the index pays for every file of a workspace."""
    parts = []
    for pattern in spec.patterns:
        regex = getattr(pattern, "regex", None)
        if pattern.include is None:  # a blank line or a comment
            continue
        if pattern.include is False or regex is None:
            return None
        parts.append("(?:" + re.sub(r"\(\?P<\w+>", "(?:", regex.pattern) + ")")
    return re.compile("|".join(parts)) if parts else re.compile(r"(?!)")


def check_patterns(patterns: Iterable[str]) -> None:
    """Raise ValueError naming the first of `patterns` that cannot be used (for settings validation)."""
    _spec(patterns)


class Exclusions:
    """The `exclude` patterns, compiled once; thread-safe (matching reads only)."""

    def __init__(self, patterns: Iterable[str] = DEFAULT_EXCLUDE) -> None:
        self.patterns = tuple(patterns)
        self._spec = _spec(self.patterns)
        self._any = _one_regex(self._spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Exclusions) and other.patterns == self.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def __repr__(self) -> str:
        return f"Exclusions({len(self.patterns)} patterns)"

    def matches(self, relative: str, is_dir: bool = False) -> bool:
        """Whether a path relative to a workspace folder (`/` or the OS separator between its parts) is
        excluded; `is_dir` for a folder."""
        relative = relative.replace(os.sep, "/").strip("/")
        if not relative:
            return False
        path = relative.lower() + ("/" if is_dir else "")
        if self._any is not None:
            return self._any.match(path) is not None
        return self._spec.match_file(path)

    def excludes(self, path: str, root: str | None = None, is_dir: bool = False) -> bool:
        """Whether `path` is excluded: relative to `root` when it lies under it, else as a whole (so a
        file outside every workspace folder is still judged by its name and its folders' names)."""
        if root is not None:
            relative = os.path.relpath(path, root)
            if not relative.startswith(".."):
                return self.matches(relative, is_dir)
        return self.matches(os.path.splitdrive(path)[1], is_dir)
