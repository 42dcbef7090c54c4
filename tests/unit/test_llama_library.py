"""Which of llama.cpp's extra CPU buffer types the engine lets weights go to."""

from __future__ import annotations

import pytest

from fim_lsp.engine.llama_library import extra_buffers_are_safe


@pytest.mark.parametrize(
    ("offered", "safe"),
    [
        ([], True),
        (["CPU_REPACK"], True),
        (["AMX", "CPU_REPACK"], False),  # ggml-org/llama.cpp#20824
        (["AMX"], False),
    ],
)
def test_extra_buffers_are_refused_where_one_is_known_to_crash(offered: list[str], safe: bool) -> None:
    assert extra_buffers_are_safe(offered) is safe
