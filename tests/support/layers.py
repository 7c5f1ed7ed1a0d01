"""The import layers of refarch.deploy (tests/unit/test_import_layers.py checks them)."""

#: refarch.deploy's modules, lowest first: each may import only the modules listed before it.
DEPLOY_LAYERS = ["mocks", "program", "progress", "model", "topology", "diagram", "supply_chain",
                 "rulebook", "safety_rules", "rules", "plan", "policy", "smoke", "operator",
                 "driver"]
