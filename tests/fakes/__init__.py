"""Fake inference servers for tests: fault injection, llama-server's `/infill`, Ollama (loopback only)."""
