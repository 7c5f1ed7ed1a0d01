"""``python -m refarch.cli``."""

import sys

from refarch.cli import main

sys.exit(main())
