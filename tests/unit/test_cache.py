"""Answers without the model: the LRU completion cache and typed-through reuse."""

import pytest

from fim_lsp.cache import CompletionCache, ShownCompletion, cache_key, typed_through
from fim_lsp.config import Settings


def test_cache_evicts_the_least_recently_used():
    cache = CompletionCache(max_entries=2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.put("c", "3")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ("1", "3")
    assert (cache.hits, cache.misses) == (3, 1)


def test_cache_is_bounded_by_characters():
    cache = CompletionCache(max_entries=100, max_chars=10)
    cache.put("a", "12345")
    cache.put("b", "123456")
    assert len(cache) == 1 and cache.chars == 6
    cache.put("huge", "x" * 11)  # larger than the whole cache: not kept
    assert cache.get("huge") is None


def test_key_depends_on_text_near_the_cursor_and_settings():
    settings = Settings()
    text = "def f():\n    return 1\n"
    key = cache_key(text, 13, "python", settings)
    assert key == cache_key(text, 13, "python", settings)
    assert key != cache_key(text, 14, "python", settings)
    assert key != cache_key(text, 13, "python", Settings(model="qwen2.5-coder-0.5b"))
    far_away = "#" * (settings.context_budget * 8 + 10)
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
