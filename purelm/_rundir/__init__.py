"""The run directory: the checkpoint container, the one module that owns a run directory's format
(`_format`), the `Run` that trains into a directory, and the conversion of PyTorch models into one."""
