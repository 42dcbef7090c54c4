"""Real-looking source shared by the workspace tests, and a helper that writes it into a folder."""

from __future__ import annotations

from pathlib import Path

PRICING_PY = '''"""Prices and discounts."""

TAX_RATE = 0.2


def apply_discount(price: float, percent: float) -> float:
    """`price` reduced by `percent` per cent."""
    return price * (1 - percent / 100)


def with_tax(price: float) -> float:
    return price * (1 + TAX_RATE)
'''


def write(root: Path, relative: str, text: str | bytes) -> Path:
    """`text` as the file `relative` under `root`, its folders made."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
