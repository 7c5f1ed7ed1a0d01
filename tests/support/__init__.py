"""Helpers the tests import as a module (never from a conftest): waiting, ports, directories."""
