"""fim-lsp: offline fill-in-the-middle code completion served over the Language Server Protocol."""

import os

__version__ = "0.1.0"

# llama.cpp's CPU backend runs on OpenMP. Its idle threads spinning without end fight whatever else
# runs for the cores (two shared cores: 30 tokens took 46 s spinning, 1.4 s passive); passive threads
# that sleep at once wake too late for the next of the hundreds of steps a written token takes (the
# 0.5B wrote 20 tokens a second instead of 40). A short spin, then sleep, has both: 40 tokens a second
# on idle cores, and no worse than passive with two busy processes beside it (libgomp's count, read
# once when llama.cpp loads; a user's own values win).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "50000")
