"""``python -m refarch.index.server``: run the local index server in the foreground."""

import sys

from refarch.index.server.main import main

sys.exit(main())
