"""`python -m worker.cli`: the same as the `backdrop` console script."""

import sys

from worker.cli import main

sys.exit(main())
