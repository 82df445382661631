"""`python -m autolr`: the same as the `autolr` command."""

from autolr.cli import main

main()
