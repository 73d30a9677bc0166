"""The `purelm` console script: signal handlers first, then the command line (`purelm._cli._main.main`).

This module imports only the standard library and `purelm._runtime._signals` (itself standard library
only), so the handlers are installed before numpy or JAX is loaded: a Ctrl-C while JAX imports ends the
command with one line, not a traceback from inside jaxlib's import code (a signal that comes before the
interpreter has run this module meets Python's own defaults). Every way out of a command ends here: its exit status, a signal (128 + its number), a closed pipe (141), or an out-of-memory error
turned into one line (1).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from purelm._runtime import _signals


def _command(argv: Sequence[str]) -> str:
    return next((arg for arg in argv if not arg.startswith("-")), "")


def console_main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the `purelm` command line and end the process with its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = _command(args)
    try:
        _signals.install(command)
        _signals.phase("imports")
        from purelm._cli._main import main

        status = main(args)
        # The command is done: spare the interpreter's final garbage collection the hundreds of thousands
        # of objects JAX's modules hold (0.5-0.7 s of every command's exit on a 2-core x86 CPU).
        gc.freeze()
        _signals.check()
    except KeyboardInterrupt as err:
        _signals.exit_interrupted(command, err)
    except BrokenPipeError:
        # `purelm sample ... | head`: the reader left. End quietly, as a tool killed by SIGPIPE would (141);
        # stdout goes to /dev/null first so that flushing it at exit cannot raise again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os._exit(128 + signal.SIGPIPE)
    except SystemExit:
        if _signals.requested() is not None:
            _signals.exit_interrupted(command, None)
        raise
    except BaseException as err:
        if _signals.requested() is not None:
            # The interrupt surfaced wrapped in another exception (raised inside a library callback).
            _signals.exit_interrupted(command, None)
        from purelm._runtime._errors import describe_resource_error

        message = describe_resource_error(err)
        if message is None:
            raise
        _signals.exit_with_error(command, message)
    if _signals.requested() is not None:
        _signals.exit_interrupted(command, None)
    sys.exit(status)
