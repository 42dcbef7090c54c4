"""Answers without the model: the LRU completion cache and typed-through reuse."""

import pytest

from fim_lsp.cache import MIB, CompletionCache, ShownCompletion, cache_key, entry_cost, typed_through
from fim_lsp.completion import CompletionRequest
from fim_lsp.config import Settings, parse_settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService


def test_cache_evicts_the_least_recently_used():
    cache = CompletionCache(max_entries=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.put("c", "3")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ("1", "3")
    assert (cache.hits, cache.misses) == (3, 1)


def test_cache_is_bounded_by_bytes():
    one = entry_cost("a", "x" * 1000)
    cache = CompletionCache(max_bytes=2 * one + 10)
    for key in "abc":
        cache.put(key, "x" * 1000)
    assert len(cache) == 2 and cache.get("a") is None  # the least recently used went
    assert cache.bytes == 2 * one <= cache.max_bytes
    cache.put("huge", "x" * 3000)  # larger than the whole cache: not kept, nothing evicted for it
    assert cache.get("huge") is None and len(cache) == 2


def test_a_smaller_bound_evicts_and_zero_keeps_nothing():
    cache = CompletionCache(max_bytes=MIB)
    for number in range(100):
        cache.put(str(number), f"answer {number}")
    cache.resize(entry_cost("99", "answer 99") * 10)
    assert len(cache) == 10 and cache.get("99") == "answer 99" and cache.get("89") is None
    cache.resize(0)
    assert len(cache) == 0 and cache.bytes == 0
    cache.put("a", "b")
    assert cache.get("a") is None


def test_the_setting_bounds_the_services_cache():
    settings, problems = parse_settings({"cacheMemoryMb": 2})
    assert problems == []
    service = CompletionService(settings)  # never started: no engine is loaded
    assert service.cache.max_bytes == 2 * MIB
    for number in range(200_000):  # far more than 2 MB of answers
        service.cache.put(f"key {number}", f"return value_{number} * 2")
    assert service.cache.bytes <= 2 * MIB
    service.update_settings(parse_settings({"cacheMemoryMb": 1}, settings)[0])
    assert service.cache.max_bytes == MIB and service.cache.bytes <= MIB
    service.shutdown()


def test_key_depends_on_text_near_the_cursor_and_settings():
    settings = Settings()
    text = "def f():\n    return 1\n"
    key = cache_key(text, 13, "python", settings)
    assert key == cache_key(text, 13, "python", settings)
    assert key != cache_key(text, 14, "python", settings)
    assert key != cache_key(text, 13, "python", Settings(model="qwen2.5-coder-0.5b"))
    far_away = "#" * (settings.budget_cap * 8 + 10)
    assert cache_key(text + far_away, 13, "python", settings) == cache_key(
        text + far_away + "x", 13, "python", settings
    )


SHOWN = ShownCompletion(before="total = sum(", after=")\n", text="item.price for item in items")


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        pytest.param("total = sum(it)\n", 14, "em.price for item in items", id="typed-the-start"),
        pytest.param("total = sum(item.price )\n", 23, "for item in items", id="typed-up-to-a-space"),
        pytest.param("total = sum(ix)\n", 14, None, id="typed-something-else"),
        pytest.param("total = sum()\n", 12, None, id="typed-nothing"),
        pytest.param("total = sum(it)  # x\n", 14, None, id="text-after-changed"),
        pytest.param("grand = sum(it)\n", 14, None, id="text-before-changed"),
        pytest.param("total = sum(item.price for item in items)\n", 40, None, id="typed-all-of-it"),
    ],
)
def test_typed_through(text, offset, expected):
    assert typed_through(SHOWN, text, offset) == expected


def test_what_is_remembered_for_typing_through_is_near_the_cursor_only():
    lines = [f"value_{n} = {n}\n" for n in range(100_000)]
    text = "".join(lines) + "total = sum(" + ")\n" + "".join(lines)
    offset = text.index("sum(") + 4
    shown = ShownCompletion.at(text, offset, "item.price for item in items", window=2048)
    assert len(shown.before) == len(shown.after) == 2048  # not the 3 MB around them
    typed = text[:offset] + "it" + text[offset:]
    assert typed_through(shown, typed, offset + 2) == "em.price for item in items"
    # An edit near the cursor is seen; one longer than the window far below is seen by its length.
    assert typed_through(shown, typed.replace("total = ", "grand = "), offset + 2) is None
    assert typed_through(shown, typed + "x = 1\n", offset + 2) is None


class SilentEngine(Engine):
    """Ends every middle at once: the model's way of saying nothing belongs here."""

    def __init__(self) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        self.calls += 1
        return Generation("", "eot", prompt_tokens=12, evaluated_tokens=12, generated_tokens=0)


async def test_a_place_with_nothing_to_show_is_remembered_too():
    engine = SilentEngine()
    service = CompletionService(Settings(workspace_context=False), engine_factory=lambda _settings: engine)
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    text = "def area(r):\n    return 3.14159 * r * r\n\n"
    request = CompletionRequest(text, len(text), "python", "/w/area.py")
    try:
        first = await service.complete("doc", request)
        again = await service.complete("doc", request)  # a re-trigger at the same place
        assert (first.text, first.reason) == (None, "eot")
        assert (again.text, again.reason) == (None, "cached")
        assert engine.calls == 1 and service.stats["cache_hits"] == 1
    finally:
        service.shutdown()
