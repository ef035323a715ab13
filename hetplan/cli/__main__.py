"""`python -m hetplan.cli`: the same entry point as the `hetplan` command."""

from hetplan.cli import main

main()
