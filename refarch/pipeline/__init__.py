"""The sync pipeline: change capture (outbox), relay, indexer, backfill, reconcile, progress."""
