"""`python -m purelm._cli ...` runs the `purelm` command without its console script installed."""

from purelm._cli._entry import console_main

console_main()
