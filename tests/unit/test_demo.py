"""The demo's own judge of its answers: right by what an answer does, whatever the CPU wrote."""

from __future__ import annotations

import pytest

from fim_lsp.demo import bundled_samples, judge, load_expectations, load_sample

SAMPLES = {sample.name: sample for sample in bundled_samples()}
EXPECTATIONS = load_expectations()


def test_every_hole_has_an_expectation():
    assert {name: len(sample.cursors) for name, sample in SAMPLES.items()} == {
        name: len(holes) for name, holes in EXPECTATIONS.items()
    }
    assert sum(len(sample.cursors) for sample in SAMPLES.values()) == 7


@pytest.mark.parametrize(
    ("name", "hole"), [(name, hole) for name, holes in EXPECTATIONS.items() for hole in range(len(holes))]
)
def test_the_expected_answer_is_judged_right(name, hole):
    verdict = judge(SAMPLES[name], EXPECTATIONS[name], hole, EXPECTATIONS[name][hole].expected)
    assert verdict.right, verdict


@pytest.mark.parametrize(
    ("name", "hole", "answer"),
    [
        pytest.param("inventory.py", 0, "return sum(p.price for p in parts)", id="python-sum-of-prices"),
        # What a build on another CPU wrote: the dataclass has no class attribute `price`.
        pytest.param("inventory.py", 1, "Part.price", id="python-class-attribute"),
        pytest.param("inventory.py", 2, "part.quantity = amount", id="python-overwrites"),
        pytest.param("shapes.ts", 0, "return shape.width + shape.height;", id="typescript-perimeter"),
        pytest.param("stack.go", 0, "s.items = append(s.items, value", id="go-does-not-parse"),
        pytest.param("stack.go", 1, "return 0, nil", id="go-never-pops"),
    ],
)
def test_a_wrong_answer_is_judged_wrong(name, hole, answer):
    verdict = judge(SAMPLES[name], EXPECTATIONS[name], hole, answer)
    assert not verdict.right, verdict


@pytest.mark.parametrize(
    ("name", "hole", "answer"),
    [
        pytest.param("inventory.py", 1, "lambda p: p.price", id="python-another-name"),
        pytest.param("shapes.ts", 0, "return shape.height * shape.width;", id="typescript-other-order"),
        pytest.param(
            "stack.go",
            1,
            "n := len(s.items) - 1\n\ttop := s.items[n]\n\ts.items = s.items[:n]\n\treturn top, nil",
            id="go-written-otherwise",
        ),
    ],
)
def test_a_right_answer_written_otherwise_is_judged_right(name, hole, answer):
    verdict = judge(SAMPLES[name], EXPECTATIONS[name], hole, answer)
    assert verdict.right, verdict


def test_cursor_marks_become_offsets():
    sample = load_sample("a.py", "x = █1\ny = 😀█\n")
    assert sample.text == "x = 1\ny = 😀\n"
    assert sample.cursors == [4, 11]
