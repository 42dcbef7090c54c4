"""Run as a child process (`python -m fim_lsp.engine.buffer_probe MODEL`): load the model with llama.cpp's
extra CPU buffer types and evaluate a prompt. Exit status 0 says this llama.cpp build's kernels for
those buffers run on this CPU; a build whose AMX kernels fault dies here instead of in the server."""

from __future__ import annotations

import sys

#: Real code, long enough that the prompt is evaluated as a batch (the matrix kernels the extra buffer
#: types bring are used for batches, not for one token at a time).
PROBE_TEXT = "def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n" * 8


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fim_lsp.engine.buffer_probe MODEL.gguf", file=sys.stderr)
        return 2
    import llama_cpp

    silent = llama_cpp.llama_log_callback(lambda *_: None)  # referenced while llama.cpp may call it
    llama_cpp.llama_log_set(silent, None)
    model = llama_cpp.Llama(model_path=argv[0], n_ctx=512, n_batch=512, verbose=False)
    tokens = model.tokenize(PROBE_TEXT.encode(), add_bos=False)
    model.eval(tokens)
    model.eval(tokens[:1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
