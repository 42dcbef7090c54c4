"""The latency benchmark without a model: the typing script, the debounce rule, the statistics, and the
replay loop against a scripted stand-in for the server."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from dataclasses import replace
from typing import Any

import pytest

from fim_lsp.bench import latency
from fim_lsp.bench.latency import (
    FileScript,
    Hole,
    HoleScript,
    Keystroke,
    ReplayOptions,
    RequestRecord,
    TypingPace,
)
from fim_lsp.client import REQUEST_CANCELLED, Pending, ResponseError
from fim_lsp.documents import TextDocument

BUNDLED = latency.bundled_files()
QUIET = TypingPace(
    line_pause_probability=0.0, word_pause_probability=0.0, typo_probability=0.0, arrival_pause_s=(0.5, 0.5)
)


def type_keys(keys: tuple[Keystroke, ...]) -> str:
    """What the keys leave on screen, typed into an empty line."""
    screen = ""
    for key in keys:
        screen = screen[:-1] if key.backspace else screen + key.insert
    return screen


# -- the typing script ------------------------------------------------------------------------------------


def test_the_bundled_files_cover_three_languages():
    suffixes = {name.rsplit(".", 1)[-1] for name, _ in BUNDLED}
    assert {"py", "ts", "go"} <= suffixes
    for _name, text in BUNDLED:
        assert 60 <= text.count("\n") <= 150


@pytest.mark.parametrize("name,text", BUNDLED, ids=[name for name, _ in BUNDLED])
@pytest.mark.parametrize("seed", [1, 2, 7], ids=lambda s: f"seed{s}")
def test_retyping_the_holes_in_script_order_gives_the_file_back(name, text, seed):
    script = latency.file_script(name, text, seed, TypingPace(), holes=5)
    document, filled = script.initial_text, set()
    for index in script.order:
        hole = script.holes[index]
        offset = script.offset_of(index, filled)
        document = document[:offset] + type_keys(hole.keystrokes) + document[offset:]
        filled.add(index)
    assert document == text
    assert len(script.initial_text) < len(text)


@pytest.mark.parametrize("name,text", BUNDLED, ids=[name for name, _ in BUNDLED])
def test_holes_are_cut_in_the_middle_of_files_not_only_at_the_end(name, text):
    holes = [h.hole for h in latency.file_script(name, text, 1, TypingPace(), holes=4).holes]
    assert len(holes) == 4
    assert {h.kind for h in holes} == {"block", "line-tail"}
    assert any(len(text) * 0.1 < h.start and h.end < len(text) * 0.9 for h in holes)
    for hole in holes:
        assert text[hole.start : hole.end] == hole.text
        assert hole.text.strip() and not hole.text[0].isspace()
    for first, second in itertools.pairwise(holes):
        assert text.count("\n", first.end, second.start) >= 2, "a line of real code between holes"


def test_a_block_hole_leaves_the_cursor_on_an_indented_line():
    text = "def area(w, h):\n    result = w * h\n    return result\n\n\nprint(area(2, 3))\n"
    block = next(h for h in latency.find_holes(text, random.Random(3), 4) if h.kind == "block")
    without = latency.text_without(text, [block])
    assert block.text.startswith("result = w * h")
    assert without.startswith("def area(w, h):\n    \n")


@pytest.mark.parametrize(
    "text",
    [
        "x = compute(a, b)",
        "if ready:\n    go()\nelse:\n    wait()",
        "\tfor i := range xs {\n\t\tsum += i\n\t}",
    ],
    ids=["one-line", "python-block", "go-tabs"],
)
@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"seed{s}")
def test_keys_type_the_text_even_with_typos(text, seed):
    pace = replace(TypingPace(), typo_probability=0.3)
    keys = latency.typing_script(text, random.Random(seed), pace)
    assert type_keys(keys) == text
    assert keys[-1].after == len(text)


def test_enter_brings_the_next_lines_indentation_in_one_key():
    keys = latency.typing_script("if a:\n        b", random.Random(0), QUIET)
    assert [k.insert for k in keys] == ["i", "f", " ", "a", ":", "\n        ", "b"]


def test_a_typo_is_a_wrong_letter_then_a_backspace_then_the_right_one():
    pace = replace(QUIET, typo_probability=1.0)
    keys = latency.typing_script("ab", random.Random(5), pace)
    assert [(k.backspace, k.advances) for k in keys[:3]] == [(False, False), (True, False), (False, True)]
    assert keys[0].insert != "a" and keys[2].insert == "a"


def test_the_same_seed_gives_the_same_script_and_another_seed_another():
    name, text = BUNDLED[0]
    first = latency.file_script(name, text, 11, TypingPace())
    again = latency.file_script(name, text, 11, TypingPace())
    other = latency.file_script(name, text, 12, TypingPace())
    assert first == again
    assert first != other


def test_typing_speed_follows_chars_per_second():
    text = "abcdefghij" * 40
    for speed in (5.0, 20.0):
        keys = latency.typing_script(text, random.Random(1), replace(QUIET, chars_per_second=speed))
        mean_gap = sum(k.gap_s for k in keys[1:]) / (len(keys) - 1)
        assert mean_gap == pytest.approx(1 / speed, rel=0.15)


def test_after_a_tab_typing_resumes_at_the_next_character_not_at_a_typo():
    keys = (
        Keystroke(1.0, "a", False, 0, 1),
        Keystroke(0.1, "x", False, 1, 1),
        Keystroke(0.1, "", True, 1, 1),
        Keystroke(0.1, "b", False, 1, 2),
        Keystroke(0.1, "c", False, 2, 3),
    )
    hole = HoleScript(Hole(0, "abc", "line-tail"), keys, 1.0)
    assert hole.resume_at(1) == 3
    assert hole.resume_at(2) == 4
    assert hole.resume_at(3) == 5


# -- the debounce rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gap,debounce,asks",
    [(0.1, 0.18, False), (0.18, 0.18, True), (0.9, 0.18, True), (0.2, 0.25, False)],
    ids=["typing-on", "exactly-the-delay", "a-pause", "longer-debounce"],
)
def test_a_request_goes_out_only_when_typing_pauses_for_the_debounce(gap, debounce, asks):
    assert latency.asks_after(gap, debounce) is asks


def test_planned_requests_follow_the_pauses():
    keys = (
        Keystroke(1.0, "a", False, 0, 1),  # the cursor arrives and rests 1 s: the editor asks once
        Keystroke(0.1, "b", False, 1, 2),
        Keystroke(0.1, "c", False, 2, 3),
        Keystroke(0.5, "d", False, 3, 4),  # a pause before d: a request after c
        Keystroke(0.05, "e", False, 4, 5),
    )
    script = FileScript(
        "f.py", "abcde", "python", (HoleScript(Hole(0, "abcde", "line-tail"), keys, 2.0),), (0,)
    )
    planned = latency.planned_requests(script, 0.18)
    assert [(p.typed, round(p.at_s, 2)) for p in planned] == [(0, 0.18), (3, 1.38), (5, 1.93)]


def test_a_faster_debounce_means_more_requests():
    name, text = BUNDLED[0]
    script = latency.file_script(name, text, 3, TypingPace())
    assert len(latency.planned_requests(script, 0.12)) > len(latency.planned_requests(script, 0.4))


# -- statistics -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,q,expected",
    [
        ([], 50, None),
        ([7.0], 95, 7.0),
        ([1, 2, 3, 4], 50, 2.5),
        (list(range(1, 101)), 95, 95.05),
        ([3, 1, 2], 100, 3),
    ],
    ids=["empty", "one", "even-median", "p95-of-100", "max"],
)
def test_percentile_interpolates_between_ranks(values, q, expected):
    assert latency.percentile(values, q) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    "delta,source",
    [
        ({"generated": 1, "evaluated_tokens": 40}, "model"),
        ({"cache_hits": 1, "requests": 2}, "cache"),
        ({"typed_through": 1}, "typed-through"),
        ({"requests": 1}, "none"),
    ],
    ids=["model", "cache", "typed-through", "refused"],
)
def test_the_source_of_an_answer_comes_from_the_counters(delta, source):
    assert latency.source_of(delta) == source


def record(outcome, latency_ms=None, source=None, text=None, evaluated=None, prompt=None, accepted=False):
    return RequestRecord(
        "f.py",
        0,
        0,
        0.0,
        outcome=outcome,
        latency_ms=latency_ms,
        source=source,
        text=text,
        evaluated_tokens=evaluated,
        prompt_tokens=prompt,
        accepted=accepted,
    )


def test_summary_counts_outcomes_and_takes_percentiles_of_served_requests():
    records = [
        record("answered", 400.0, "model", "x + 1", evaluated=30, prompt=900, accepted=True),
        record("answered", 600.0, "model", "if a:\n    b", evaluated=150, prompt=950),
        record("empty", 500.0, "model", evaluated=10, prompt=920),
        record("answered", 2.0, "typed-through", " 1", evaluated=0),
        record("answered", 1.0, "cache", "y", evaluated=0),
        record("empty", 0.5, "none"),  # a cursor inside a word: refused at once, not served
        record("cancelled"),
        record("timeout"),
    ]
    summary = latency.summarize(records, peak_rss_mib=700.0, prefetched=2, warm_ups=5)
    assert (summary.requests, summary.answered, summary.empty, summary.cancelled, summary.failed) == (
        8,
        4,
        2,
        1,
        1,
    )
    assert summary.p50_ms == 400.0
    assert summary.max_ms == 600.0
    assert summary.model_p50_ms == 500.0
    assert summary.warm_model_runs == 2, "30 of 900 and 10 of 920 tokens evaluated; 150 of 950 is not warm"
    assert summary.warm_model_p50_ms == 450.0
    assert summary.single_line_p50_ms == pytest.approx(2.0)
    assert summary.model_evaluated_p50 == 30
    assert summary.evaluated_p50 == 10, "answers without the model evaluate nothing"
    assert summary.prompt_p50 == 920
    assert (summary.cache_hits, summary.typed_through, summary.accepted) == (1, 1, 1)
    assert summary.typed_through_p95_ms == 2.0
    assert summary.peak_rss_mib == 700.0
    assert summary.prefetched == 2, "the server's own count, passed through"
    assert summary.warm_ups == 5


def test_an_empty_run_has_no_percentiles():
    summary = latency.summarize([])
    assert summary.requests == 0 and summary.p50_ms is None and summary.evaluated_p50 is None


@pytest.mark.parametrize(
    "count,expected", [(0, []), (2, [2, 7]), (5, [1, 3, 5, 7, 9]), (20, list(range(10)))], ids=str
)
def test_sample_evenly(count, expected):
    assert latency.sample_evenly(list(range(10)), count) == expected


@pytest.mark.parametrize(
    "warm,baseline,expected", [(200, 1000, 0.2), (None, 1000, None), (5, 0, None)], ids=str
)
def test_ratio(warm, baseline, expected):
    assert latency.ratio(warm, baseline) == expected


def test_the_report_puts_warm_and_baseline_side_by_side():
    summary = latency.summarize([record("answered", 100.0, "model", "a", evaluated=20, prompt=800)])
    base = latency.summarize([record("answered", 1000.0, "model", "a", evaluated=800, prompt=800)])
    report = {
        "machine": {"cpu": "test cpu", "cpus": 2, "load_average": [1.0, 1.0, 1.0]},
        "options": {
            "files": ["a.py"],
            "seed": 1,
            "chars_per_second": 10,
            "debounce_ms": 180,
            "cancel_on_type": True,
        },
        "runs": [
            {
                "model": "m",
                "load_s": 1.0,
                "logs": "/tmp/x",
                "warm": vars(summary),
                "baseline": vars(base),
                "ratio_p50": 0.1,
                "ratio_model_p50": 0.1,
                "ratio_paired_p50": 0.1,
                "in_sync": True,
                "supersession": {
                    "probes": 2,
                    "superseded": 1,
                    "stop_p50_ms": 40.0,
                    "stop_max_ms": 40.0,
                    "late_ghost": 0,
                    "cancel_ack_p50_ms": 1.0,
                    "cancel_ack_max_ms": 2.0,
                },
            },
            {"model": "broken", "error": "model missing"},
        ],
    }
    text = latency.format_report(report)
    assert "warm p50 / baseline p50: 0.100 (target <= 0.25)  (meets the target)" in text
    assert "tokens evaluated p50" in text and "800" in text
    assert "broken: model missing" in text


# -- command line -----------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    latency.register_cli(parser.add_subparsers())
    return parser.parse_args(["latency", *argv])


def test_the_command_line_builds_the_options():
    args = parse(
        "--model",
        "a",
        "--model",
        "b",
        "--seed",
        "4",
        "--chars-per-second",
        "8",
        "--debounce-ms",
        "150",
        "--limit-requests",
        "5",
        "--engine-json",
        '{"kind": "llama-server", "url": "http://127.0.0.1:8080"}',
        "--settings-json",
        '{"threads": 1}',
    )
    options = latency.options_from_args(args)
    assert args.model == ["a", "b"]
    assert options.replay == ReplayOptions(debounce_s=0.15, cancel_on_type=True, limit_requests=5, seed=4)
    assert options.pace.chars_per_second == 8
    assert options.settings == {
        "threads": 1,
        "engine": {"kind": "llama-server", "url": "http://127.0.0.1:8080"},
    }
    assert args.handler is latency.latency_command


@pytest.mark.parametrize("bad", ["[1, 2]", "{nope"], ids=["not-an-object", "not-json"])
def test_engine_json_must_be_a_json_object(bad, capsys):
    with pytest.raises(SystemExit):
        parse("--engine-json", bad)
    assert "engine-json" in capsys.readouterr().err


def test_a_dry_run_prints_the_plan_without_a_server(capsys):
    args = parse("--dry-run", "--seed", "2")
    assert latency.latency_command(args) == 0
    out = capsys.readouterr().out
    for name, _ in BUNDLED:
        assert f"{name}: 4 holes" in out


# -- the replay loop, against a scripted server -----------------------------------------------------------


class ScriptedServer:
    """Stands in for the editor client: answers each request after `delay_s` with `answer(text, offset)`."""

    def __init__(self, answer, delay_s: float) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.documents: dict[str, TextDocument] = {}
        self.cancelled: list[str] = []
        self.pending: dict[str, Pending] = {}
        self.requests: list[tuple[int, int]] = []  # (version, offset)
        self._count = 0

    def open(self, uri: str, text: str, language_id: str) -> None:
        self.documents[uri] = TextDocument(uri, language_id, 1, text)

    def edit(self, uri: str, start: int, end: int, new_text: str) -> None:
        document = self.documents[uri]
        document.text = document.text[:start] + new_text + document.text[end:]
        document.version += 1

    def ask_inline_at(self, uri: str, offset: int) -> Pending:
        loop = asyncio.get_running_loop()
        document = self.documents[uri]
        self._count += 1
        pending = self.pending[f"r{self._count}"] = Pending(f"r{self._count}")
        self.requests.append((document.version, offset))
        text = self.answer(document.text, offset)

        def respond() -> None:
            if not pending.future.done():
                pending.arrived = time.perf_counter()
                pending.future.set_result({"items": [{"insertText": text}] if text else []})

        loop.call_later(self.delay_s, respond)
        return pending

    def cancel(self, msg_id: str) -> None:
        self.cancelled.append(msg_id)
        pending = self.pending[msg_id]
        if not pending.future.done():
            pending.arrived = time.perf_counter()
            pending.future.set_exception(ResponseError(REQUEST_CANCELLED, "cancelled"))

    async def stats_delta(self) -> dict[str, int]:
        return {"generated": 1, "evaluated_tokens": 12, "prompt_tokens": 300}

    async def in_sync(self, uri: str) -> bool:
        return True


SOURCE = "def total(xs):\n    result = sum(x * x for x in xs) + offset(xs)\n    return result\n"
FAST = TypingPace(
    chars_per_second=400.0,
    jitter=0.1,
    line_pause_probability=1.0,
    word_pause_probability=1.0,
    pause_s=(0.06, 0.08),
    arrival_pause_s=(0.06, 0.08),
    typo_probability=0.0,
    type_along_probability=0.0,
)


def one_hole_script(pace: TypingPace, seed: int = 1) -> FileScript:
    start = SOURCE.index("sum(")
    hole = Hole(start, SOURCE[start : SOURCE.index("\n", start)], "line-tail")
    keys = latency.typing_script(hole.text, random.Random(seed), pace)
    return FileScript("total.py", "python", SOURCE, (HoleScript(hole, keys, 0.08),), (0,))


def replay(
    server: ScriptedServer, script: FileScript, pace: TypingPace, **options: Any
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    options.setdefault("warm_up", False)  # these tests count every request the server sees
    in_sync = asyncio.run(
        latency.replay_file(server, script, pace, ReplayOptions(debounce_s=0.03, **options), records, 0.0)
    )
    assert in_sync
    assert server.documents["file:///bench/total.py"].text == SOURCE
    return records


def test_a_right_suggestion_is_accepted_and_typing_goes_on_after_it():
    def next_word(text: str, offset: int) -> str | None:
        # A perfect model: the file's own next word, when the text before the cursor is the file's.
        if text[:offset] != SOURCE[:offset]:
            return None
        rest = SOURCE[offset:]
        return rest[: max(1, rest.find(" ", 1))] if rest.strip() else None

    server = ScriptedServer(next_word, delay_s=0.005)
    records = replay(server, one_hole_script(FAST), FAST)
    assert any(r.accepted for r in records)
    assert all(r.outcome == "answered" for r in records)
    assert not server.cancelled
    # An accepted word is not typed: fewer edits than characters in the hole.
    assert server.documents["file:///bench/total.py"].version - 1 < len(
        one_hole_script(FAST).holes[0].hole.text
    )


def test_a_suggestion_typed_out_by_hand_is_not_accepted():
    pace = replace(FAST, type_along_probability=1.0)
    server = ScriptedServer(lambda text, offset: SOURCE[offset : offset + 3] or None, delay_s=0.005)
    records = replay(server, one_hole_script(pace), pace)
    assert records and not any(r.accepted for r in records)


def test_a_key_pressed_while_a_request_is_in_flight_cancels_it():
    slow = replace(FAST, pause_s=(0.04, 0.05), arrival_pause_s=(0.04, 0.05))
    server = ScriptedServer(lambda text, offset: "zzz", delay_s=0.3)  # slower than any pause
    records = replay(server, one_hole_script(slow), slow)
    assert len(records) >= 3
    # Every request but the last was overtaken by a key and cancelled; the last is answered.
    assert [r.outcome for r in records[:-1]] == ["cancelled"] * (len(records) - 1)
    assert records[-1].outcome == "answered"
    assert len(server.cancelled) == len(records) - 1
    assert all(r.cancel_ack_ms is not None for r in records[:-1])
    assert not any(r.accepted for r in records)


def test_a_patient_typist_waits_for_slow_answers_instead_of_cancelling_them():
    slow = replace(FAST, pause_s=(0.04, 0.05), arrival_pause_s=(0.04, 0.05))
    server = ScriptedServer(lambda text, offset: "zzz", delay_s=0.2)
    records = replay(server, one_hole_script(slow), slow, wait_for_answer_s=5.0)
    assert len(records) >= 3
    assert all(r.outcome == "answered" for r in records)
    assert not server.cancelled


def test_without_cancel_on_type_requests_are_left_to_the_server():
    slow = replace(FAST, pause_s=(0.04, 0.05), arrival_pause_s=(0.04, 0.05))
    server = ScriptedServer(lambda text, offset: None, delay_s=0.3)
    records = replay(server, one_hole_script(slow), slow, cancel_on_type=False)
    assert not server.cancelled
    assert all(r.outcome == "empty" for r in records)


def test_requests_stop_at_the_limit_and_the_file_is_still_completed():
    server = ScriptedServer(lambda text, offset: None, delay_s=0.001)
    records = replay(server, one_hole_script(FAST), FAST, limit_requests=2)
    assert len(records) == 2


def test_each_request_carries_the_document_it_was_asked_about():
    server = ScriptedServer(lambda text, offset: None, delay_s=0.001)
    records = replay(server, one_hole_script(FAST), FAST)
    for record, (_version, offset) in zip(records, server.requests, strict=True):
        assert record.offset == offset
        assert record.snapshot.startswith(SOURCE[: SOURCE.index("sum(")])
        assert record.snapshot.endswith(SOURCE[SOURCE.index("\n    return") :])
        assert record.source == "model" and record.evaluated_tokens == 12


def test_the_warm_up_request_is_waited_for_and_not_counted():
    server = ScriptedServer(lambda text, offset: None, delay_s=0.001)
    records = replay(server, one_hole_script(FAST), FAST, warm_up=True)
    assert len(server.requests) == len(records) + 1
    _version, first_offset = server.requests[0]
    assert first_offset == one_hole_script(FAST).offset_of(0, set())


def test_cold_rows_are_indented_code_away_from_every_row_asked_about():
    lines = ["def f(x):"] + [f"    y{n} = x + {n}" for n in range(40)] + ["    return y0", ""]
    text = "\n".join(lines)
    rows = latency.cold_rows(text, asked_rows={10}, rng=random.Random(3), spacing=8)
    assert rows, "a long indented body has cold rows"
    for row in rows:
        assert lines[row].startswith("    ") and lines[row + 1].strip()[0].isalpha()
        assert abs(row - 10) >= 8
    assert all(abs(a - b) >= 8 for a in rows for b in rows if a != b)
