"""The purelm version, where every layer can read it (`purelm.__version__` re-exports it)."""

__version__ = "0.1.0"
