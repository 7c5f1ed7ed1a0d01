"""refarch: semantic search over Postgres with a vector index kept in sync, from notebook to AWS.

Nothing happens at import time: no clients, servers, directories or model loads. Import the
module for the concept you need (``refarch.settings``, ``refarch.embeddings``, ...).
"""

__version__ = "0.1.0"
