"""`python -m explorer` is the `stylegan-explorer` command."""
import sys

from .cli import main

sys.exit(main())
