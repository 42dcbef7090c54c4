"""fim-lsp: offline fill-in-the-middle code completion served over the Language Server Protocol."""

import os

__version__ = "0.1.0"

# llama.cpp's CPU backend runs on OpenMP, whose idle threads spin by default. On a laptop that is busy
# with anything else (a build, an editor, a second model) spinning threads and the work they wait for
# fight over the cores: measured on two shared cores, 30 tokens took 46 s spinning and 1.4 s
# passive. Set before llama.cpp is loaded, since OpenMP reads it once; a user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
