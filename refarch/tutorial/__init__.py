"""Notebook plumbing: recording a notebook's results for the tests."""
