"""Deploying refarch to AWS with Pulumi: the offline plan, the rules, the Automation API driver.

- :mod:`refarch.deploy.plan`: run the program (``infra/``) under Pulumi's mocks, offline;
- :mod:`refarch.deploy.model`: the :class:`~refarch.deploy.model.Plan` that run returns;
- :mod:`refarch.deploy.topology`: who is who and what is wired to what, read from a plan;
- :mod:`refarch.deploy.rules`: the security and wiring rules, checked on a plan;
- :mod:`refarch.deploy.diagram`: the Mermaid diagram drawn from a plan;
- :mod:`refarch.deploy.driver`: preview, up, refresh, destroy and outputs via the Automation API;
- :mod:`refarch.deploy.smoke`: checking a fresh deployment.

Importing this package imports nothing else; Pulumi and boto3 load with the modules that use them.
The modules import downward only (``tests/unit/test_import_layers.py`` checks it):
``mocks`` <- ``model`` <- ``topology`` <- ``diagram`` and ``rules``; ``plan`` runs the program
and returns a ``model.Plan``; ``driver`` and ``smoke`` stand apart.
"""
