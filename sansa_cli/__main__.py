"""``python -m sansa_cli ...`` (also what ``torchrun -m sansa_cli`` runs)."""

from sansa_cli.cli.app import main

main()
