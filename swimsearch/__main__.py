"""`python -m swimsearch`: the command line, as the installed `swimsearch` script runs it."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
