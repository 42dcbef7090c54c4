"""Repository warm-up: a short LoRA training of the shipped model on FIM tasks cut from code.

`fim-lsp warmup FOLDER...` cuts fill-in-the-middle tasks out of the given code (`fim_lsp.dataset`),
renders each exactly as the server prompts the model (`prompts`), trains a LoRA adapter on the model's
own GGUF weights (`train`), and writes it in llama.cpp's GGUF LoRA format (`export`), which the embedded
engine applies over the quantized model (the `adapter` setting; `adapters` checks that an adapter belongs
to the model it is put on).

Training needs the optional dependencies (`pip install 'fim-lsp[warmup]'`: torch, transformers, peft,
gguf); only `adapters` is imported by the server, and it needs none of them.
"""
