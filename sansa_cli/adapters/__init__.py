"""Adapter strategies: small trainable modules injected into a frozen SAM2 from outside.

Each strategy is one module here, registered through the ``sansa_cli.adapters`` entry-point
group (see ``pyproject.toml``); :mod:`sansa_cli.adapters.base` holds the shared contract.
"""
