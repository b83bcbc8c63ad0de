"""`python -m assistant_kit` is the `kit` command."""

from assistant_kit.cli import main

main()
