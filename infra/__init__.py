"""refarch's Pulumi program: one ComponentResource per file, assembled by ``program.py``."""
