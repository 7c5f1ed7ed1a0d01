"""Sub-commands of the ``refarch`` CLI, one module each with a ``register(subparsers)``."""
