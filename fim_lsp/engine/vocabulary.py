"""A loaded model's tokens as the embedded engine needs them: spelling them, the FIM template they
belong to, which of them end a middle, which start with a given piece of a word, and the model's first
choice among them."""

from __future__ import annotations

import re
from typing import Any

from fim_lsp.errors import ConfigurationError
from fim_lsp.prompt import FimTemplate, detect_template, known_templates

#: A token that is (a space and) part of a word: what `heal_word_end` takes off the end of a prompt.
_WORD_PIECE = re.compile(rb" ?\w+")
#: Word pieces whose tokens are remembered (`starting_with`); past that the memory starts afresh.
MAX_REMEMBERED_PIECES = 1024


class Vocabulary:
    """The tokens of one llama.cpp model (`llama_cpp._internals.LlamaModel`)."""

    def __init__(self, model: Any) -> None:
        import llama_cpp

        self._model = model
        self._vocab = model.vocab
        self.size: int = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._stop_ids: set[int] = set()
        self._end_ids: list[int] | None = None
        self._pieces: list[bytes] | None = None
        self._starting_with: dict[bytes, list[int]] = {}

    def tokenize(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def detokenize(self, tokens: list[int]) -> bytes:
        return self._model.detokenize(tokens)

    def _text(self, token: int) -> str:
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    def single_token_ids(self, spellings: tuple[str, ...]) -> set[int]:
        """Ids of those spellings that are one token in this vocabulary."""
        ids = set()
        for spelling in spellings:
            tokens = self.tokenize(spelling)
            if len(tokens) == 1 and self._text(tokens[0]).removeprefix("▁") == spelling:
                ids.add(tokens[0])
        return ids

    def fim_template(self, model_name: str) -> FimTemplate:
        """The model's FIM template, from its tokens and what llama.cpp read from its metadata."""
        import llama_cpp

        candidates = {m for t in known_templates().values() for m in t.markers}
        vocabulary = {self._text(i) for i in self.single_token_ids(tuple(candidates))}
        for getter in ("llama_vocab_fim_pre", "llama_vocab_fim_suf", "llama_vocab_fim_mid"):
            token = getattr(llama_cpp, getter)(self._vocab)
            if token >= 0:
                vocabulary.add(self._text(token))
        template = detect_template(vocabulary)
        if template is None:
            raise ConfigurationError(
                f"{model_name} has no fill-in-the-middle tokens of a family we know; "
                "choose a FIM-trained code model, or name its template family in engine.template"
            )
        return template

    def stop_at(self, template: FimTemplate) -> None:
        """End middles at the template's stop spellings too (those that are one token here)."""
        self._stop_ids = self.single_token_ids(template.stop)
        self._end_ids = None

    def ends_middle(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token)) or token in self._stop_ids

    def starting_with(self, piece: bytes) -> list[int]:
        """Every token whose text starts with `piece` (`piece`'s own token among them)."""
        if self._pieces is None:
            # Once per model, when first needed: 0.4 s for Qwen's 151,936 tokens here; control tokens
            # detokenize to nothing and so never match.
            self._pieces = [self.detokenize([token]) for token in range(self.size)]
        if piece not in self._starting_with:
            if len(self._starting_with) >= MAX_REMEMBERED_PIECES:
                self._starting_with.clear()
            self._starting_with[piece] = [t for t, text in enumerate(self._pieces) if text.startswith(piece)]
        return self._starting_with[piece]

    def best(self, logits: Any, among: list[int] | None = None, *, no_end: bool = False) -> int:
        """The model's first choice for the next token in `logits`: among `among`, or among all tokens but
        the end-of-generation ones with `no_end`, or among all (greedy)."""
        import numpy as np

        if among is not None:
            return among[int(np.argmax(logits[among]))]
        if not no_end:
            return int(np.argmax(logits))
        if self._end_ids is None:
            # Once per model, when first needed: ~150,000 quick calls (0.14 s for Qwen's vocabulary here).
            self._end_ids = [token for token in range(self.size) if self.ends_middle(token)]
        logits = logits.copy()
        logits[self._end_ids] = -np.inf
        return int(np.argmax(logits))

    def word_end_piece(self, tokens: list[int]) -> bytes:
        """The text of the prompt's last token when it is part of a word, else nothing."""
        if len(tokens) < 2:
            return b""
        piece = self.detokenize(tokens[-1:])
        return piece if _WORD_PIECE.fullmatch(piece) else b""
