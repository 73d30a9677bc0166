"""The `purelm` command: its console entry point (`_entry`), argument parsing and the commands, which call
the library. Importing this package imports nothing else: the entry point installs its signal handlers
before JAX is loaded."""
