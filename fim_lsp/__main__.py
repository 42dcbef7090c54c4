"""`python -m fim_lsp` is `fim-lsp`."""

import sys

from fim_lsp.cli import main

sys.exit(main())
