"""The kind of device JAX computes on (`--device cpu|gpu|tpu`), and one line, not JAX's traceback, where the
kind asked for (with `--device` or `JAX_PLATFORMS`) cannot start.

Standard library only until `check` runs: `use` must come before JAX starts its backends.

>>> use("cpu")   # doctest: +SKIP
>>> check("cpu") # doctest: +SKIP
"""

from __future__ import annotations

import os
import pkgutil
import re
import sys

DEVICES = ("cpu", "gpu", "tpu")


class DeviceError(ValueError):
    """An impossible device request: a kind of device that is not there, more devices than exist, or a batch
    that does not divide over them."""


def _gpu_platform() -> str:
    """JAX's name for the GPUs its installed plugin drives: "cuda" or "rocm"."""
    plugins = sorted(
        module.name for module in pkgutil.iter_modules() if module.name.startswith(("jax_cuda", "jax_rocm"))
    )
    if not plugins:
        raise DeviceError(
            "--device gpu: this JAX has no GPU support installed (NVIDIA: pip install -U 'jax[cuda12]'; "
            "AMD: see JAX's installation guide)"
        )
    return "cuda" if any(name.startswith("jax_cuda") for name in plugins) else "rocm"


def use(device: str | None) -> None:
    """Make `device` ("cpu", "gpu" or "tpu"; None: JAX's own choice) the kind JAX starts; before any backend."""
    if device is None:
        return
    if device not in DEVICES:
        raise DeviceError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    platforms = _gpu_platform() if device == "gpu" else device
    os.environ["JAX_PLATFORMS"] = platforms
    if "jax" in sys.modules:  # imported already (a test, a notebook): its configuration read the variable then
        sys.modules["jax"].config.update("jax_platforms", platforms)


def check(device: str | None) -> None:
    """Start JAX's backends; raise `DeviceError`, in one line, if they cannot start or are not of kind `device`."""
    import jax

    asked = f"--device {device}" if device else f"JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS', '')}"
    try:
        platform = jax.devices()[0].platform
    except Exception as err:  # RuntimeError, or a bare AssertionError for a platform without its plugin
        raise DeviceError(f"{asked}: JAX cannot start that kind of device here ({_reason(err)})") from None
    kind = "gpu" if platform in ("gpu", "cuda", "rocm") else platform
    if device is not None and kind != device:
        raise DeviceError(f"{asked}: JAX started {platform} devices instead")


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    if not text:
        return f"{type(err).__name__}: its plugin is not installed, or it found no device"
    text = re.sub(r"\s*\(set JAX_PLATFORMS='' to automatically choose an available backend\)", "", text)
    return " ".join(text.splitlines()[0].split())
