"""`python -m kubi` runs the `kubi` command."""

from kubi.cli.main import main

main()
