"""Fixtures of the warm-up's tests: tiny Qwen2 models with the real vocabulary, a small repository, and
one warm-up run of `fim-lsp warmup` on them that several tests look at."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.warmup.tiny_model import write_tiny_qwen2

FAST_MODEL = "qwen2.5-coder-0.5b"
#: Lines that identify each module of the tiny repository (a held-out file's must never be trained on).
MODULES = {
    "geometry/points.py": '''"""Points of the plane."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x_coordinate: float
    y_coordinate: float

    def shifted_by(self, delta_x: float, delta_y: float) -> "Point":
        return Point(self.x_coordinate + delta_x, self.y_coordinate + delta_y)


def origin_point() -> Point:
    return Point(0.0, 0.0)
''',
    "geometry/shapes.py": '''"""Shapes made of points."""

from geometry.points import Point, origin_point


class Rectangle:
    def __init__(self, corner: Point, width_of_rectangle: float, height_of_rectangle: float) -> None:
        self.corner = corner
        self.width_of_rectangle = width_of_rectangle
        self.height_of_rectangle = height_of_rectangle

    def area_of_rectangle(self) -> float:
        return self.width_of_rectangle * self.height_of_rectangle

    def centre_of_rectangle(self) -> Point:
        half_width = self.width_of_rectangle / 2
        half_height = self.height_of_rectangle / 2
        return self.corner.shifted_by(half_width, half_height)


def unit_square() -> Rectangle:
    return Rectangle(origin_point(), 1.0, 1.0)
''',
    "geometry/circles.py": '''"""Circles."""

import math

from geometry.points import Point, origin_point


class Circle:
    def __init__(self, centre_of_circle: Point, radius_of_circle: float) -> None:
        self.centre_of_circle = centre_of_circle
        self.radius_of_circle = radius_of_circle

    def area_of_circle(self) -> float:
        return math.pi * self.radius_of_circle**2

    def circumference_of_circle(self) -> float:
        return 2 * math.pi * self.radius_of_circle


def unit_circle() -> Circle:
    return Circle(origin_point(), 1.0)
''',
    "geometry/report.py": '''"""Text reports about shapes."""

from geometry.circles import Circle, unit_circle
from geometry.shapes import Rectangle, unit_square


def describe_rectangle(rectangle: Rectangle) -> str:
    area_text = f"{rectangle.area_of_rectangle():.2f}"
    return f"rectangle of area {area_text} at {rectangle.corner}"


def describe_circle(circle: Circle) -> str:
    circumference_text = f"{circle.circumference_of_circle():.2f}"
    return f"circle of circumference {circumference_text}"


def describe_defaults() -> list[str]:
    square_description = describe_rectangle(unit_square())
    circle_description = describe_circle(unit_circle())
    return [square_description, circle_description]
''',
    "geometry/scaling.py": '''"""Scaling shapes by a factor."""

from geometry.circles import Circle
from geometry.shapes import Rectangle


def scaled_rectangle(rectangle: Rectangle, scaling_factor: float) -> Rectangle:
    new_width = rectangle.width_of_rectangle * scaling_factor
    new_height = rectangle.height_of_rectangle * scaling_factor
    return Rectangle(rectangle.corner, new_width, new_height)


def scaled_circle(circle: Circle, scaling_factor: float) -> Circle:
    new_radius = circle.radius_of_circle * scaling_factor
    return Circle(circle.centre_of_circle, new_radius)
''',
}


def write_repository(root: Path) -> Path:
    for relative, text in MODULES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    """The shipped 0.5B's GGUF (provisioned by `make test-model`): its vocabulary is the tiny models'."""
    from fim_lsp.models import resolve_model

    return resolve_model(FAST_MODEL)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, shipped_model: Path) -> tuple[Path, Path]:
    """Two tiny Qwen2 models, different weights, the same (real) vocabulary."""
    pytest.importorskip("gguf")
    folder = tmp_path_factory.mktemp("tiny-models")
    return (
        write_tiny_qwen2(folder / "tiny-one.gguf", shipped_model, seed=1),
        write_tiny_qwen2(folder / "tiny-two.gguf", shipped_model, seed=2),
    )


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repository(tmp_path_factory.mktemp("repo") / "geometry-project")


def warmup_command(model: Path, repository: Path, output: Path, *more: str) -> list[str]:
    """`fim-lsp warmup` on the tiny model: a high learning rate so a few steps move the weights, short
    prompts so they are quick."""
    return [
        sys.executable,
        "-m",
        "fim_lsp",
        "warmup",
        str(repository),
        "--model",
        str(model),
        "--output",
        str(output),
        "--threads",
        "1",
        "--learning-rate",
        "1e-2",
        "--context-budget",
        "256",
        "--max-tokens",
        "1024",
        "--held-out",
        "0.2",
        "--save-every",
        "2",
        *more,
    ]


def run_environment(cache: Path) -> dict[str, str]:
    return {**os.environ, "FIM_LSP_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}


@dataclass
class WarmedUp:
    """One finished `fim-lsp warmup` run on the tiny model."""

    model: Path
    adapter: Path
    work_dir: Path
    eval_tasks: Path
    stderr: str


@pytest.fixture(scope="session")
def warmed_up(
    tmp_path_factory: pytest.TempPathFactory, tiny_models: tuple[Path, Path], repository: Path
) -> WarmedUp:
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    folder = tmp_path_factory.mktemp("warmed")
    adapter = folder / "adapter.gguf"
    eval_tasks = folder / "eval.jsonl"
    command = warmup_command(
        tiny_models[0],
        repository,
        adapter,
        "--steps",
        "6",
        "--eval-tasks",
        str(eval_tasks),
        "--adapter-type",
        "float16",
    )
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env=run_environment(folder / "cache"),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return WarmedUp(tiny_models[0], adapter, folder / "adapter.gguf.work", eval_tasks, done.stderr)
