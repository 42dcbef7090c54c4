"""A small inventory of parts, used by `fim-lsp demo`."""

from dataclasses import dataclass


@dataclass
class Part:
    name: str
    price: float
    quantity: int


def total_value(parts: list[Part]) -> float:
    """The value of all parts in stock."""
    █


def cheapest(parts: list[Part]) -> Part | None:
    """The part with the lowest price, or None for an empty list."""
    if not parts:
        return None
    return min(parts, key=█)


def restock(parts: list[Part], name: str, amount: int) -> None:
    for part in parts:
        if part.name == name:
            █
