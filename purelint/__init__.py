"""purelint: a JAX-aware purity linter built on libcst. Imports neither jax nor torch."""

__version__ = "0.1.0"
