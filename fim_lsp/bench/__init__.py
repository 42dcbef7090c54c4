"""Benchmarks that are part of the product: `fim-lsp bench quality` (FIM quality through the pipeline)."""
