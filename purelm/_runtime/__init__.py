"""What every layer of purelm may use: signals, devices and processes, host memory, the compilation cache,
memory errors, `filter_jit`, atomic files and the version. Nothing here imports another purelm layer."""
