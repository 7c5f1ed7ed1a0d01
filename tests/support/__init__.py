"""Helpers the tests import as a module (never from a conftest, which holds fixtures only).

``waiting`` (wait_until, eventually, poll_value), ``ports`` (free_port), ``dirs`` (scratch_dir),
``paths`` (ROOT, TEST_OUTPUT), ``stack`` (`refarch up` driven through the CLI),
``isolation`` (what tests/unit/ may not do) and ``index_model`` (the in-memory reference the
index's model-based tests compare every read with).
"""
