"""Inference engines: where the model runs. One interface, chosen by configuration."""

from __future__ import annotations

import logging

from fim_lsp.config import Settings
from fim_lsp.engine.base import CancelToken, Engine, Generation, GenerationRequest, StopReason

logger = logging.getLogger(__name__)

__all__ = ["CancelToken", "Engine", "Generation", "GenerationRequest", "StopReason", "create_engine"]


def create_engine(settings: Settings) -> Engine:
    """The engine the settings name. Heavy dependencies are imported here, only for the engine chosen."""
    kind = settings.engine.kind
    if kind == "embedded":
        from fim_lsp.engine.llama_cpp import LlamaCppEngine

        return LlamaCppEngine.from_settings(settings)
    from fim_lsp.engine.remote import create_remote_engine

    if settings.adapter_file:
        logger.warning("the adapter setting is ignored: the %s engine runs the model its server loaded", kind)

    return create_remote_engine(settings)
