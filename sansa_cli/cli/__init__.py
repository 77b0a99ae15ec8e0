"""The ``sansa`` command line: one module per command, joined in :mod:`sansa_cli.cli.app`.

Command modules import only typer and the standard library at import time, so ``sansa --help``
starts without torch or sam2; the work is delegated to library functions imported inside.
"""
