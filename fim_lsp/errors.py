"""The errors fim-lsp raises, as one small tree.

Lower-level failures (llama.cpp, HTTP, the file system) are translated into these where they cross into
our code, so the server has one place that decides what a user sees.
"""

from __future__ import annotations


class FimError(Exception):
    """Base of every error fim-lsp raises on purpose."""

    #: Whether the user can act on it (shown once as a message in the editor), or it is only logged.
    user_actionable = False


class ModelMissingError(FimError):
    """No model file where the settings say, and no way to provision one."""

    user_actionable = True


class ModelCorruptError(FimError):
    """A model file exists but is not the file we expect (checksum) or llama.cpp cannot load it."""

    user_actionable = True


class EngineUnavailableError(FimError):
    """The inference engine cannot serve: still loading, failed to load, or a remote server is down."""


class PromptTooLongError(FimError):
    """The prompt does not fit the model's context even after cutting the context to the budget."""


class ConfigurationError(FimError):
    """A setting has a value we cannot use."""

    user_actionable = True
