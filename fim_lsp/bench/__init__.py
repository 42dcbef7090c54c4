"""Benchmarks that are part of the product: `fim-lsp bench quality` (FIM quality through the pipeline) and
`fim-lsp bench latency` (a person typing, replayed against the server)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def json_object_arg(text: str) -> dict[str, Any]:
    """argparse type of the options that take settings as a JSON object (`--engine-json`)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value
