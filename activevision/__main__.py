"""``python -m activevision``: the command line."""

from activevision.cli import main

main()
