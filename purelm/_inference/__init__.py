"""The inference layer: sampling (one call or streamed), programs compiled ahead of time for the `sample` and
`eval` commands, and what those commands compute, as functions."""
