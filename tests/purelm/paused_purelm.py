"""The `purelm` command, paused at one phase, for tests: `python paused_purelm.py PHASE [ARGS...]` (PHASE
`-`: not paused).

When the command reaches PHASE (`purelm._runtime._signals.phase`, which every phase starts with) for the
first time, the process prints `MARKER PHASE` on stderr and waits there, up to five minutes, for a
signal; the phase then goes on as usual, honouring the signal. Tests signal a command in each of its
phases deterministically this way, without a hook in the product: the wrapper replaces `phase` before
the console entry point runs.
"""

import sys
import time

from purelm._cli._entry import console_main
from purelm._runtime import _signals

MARKER = "purelm-test: paused at"
LIMIT_S = 300.0  # a loaded test machine may take a while to signal every paused process


def pausing_at(wanted: str, phase):
    """`phase`, pausing the first time it is called with `wanted`."""
    paused = []

    def pausing_phase(name: str) -> None:
        if name == wanted and not paused:
            paused.append(name)
            print(f"{MARKER} {name}", file=sys.stderr, flush=True)
            deadline = time.monotonic() + LIMIT_S
            # Outside deferred() the signal handler raises out of this sleep; inside, the flag ends the wait.
            while _signals.requested() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        phase(name)

    return pausing_phase


if __name__ == "__main__":
    if sys.argv[1] != "-":
        _signals.phase = pausing_at(sys.argv[1], _signals.phase)
    console_main(sys.argv[2:])
