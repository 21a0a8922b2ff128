"""``python -m retrigger``: the CLI."""

from retrigger.cli import main

main()
