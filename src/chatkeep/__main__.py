"""``python -m chatkeep`` runs the CLI."""

from chatkeep.cli import main

main()
