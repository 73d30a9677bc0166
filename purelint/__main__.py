"""`python -m purelint` runs the command line."""

from purelint._cli import main

raise SystemExit(main())
