"""A program that fails: its exception and exit status must come through the probe unchanged."""

import sys

import jax


@jax.jit
def double(x):
    return 2 * x


def fail():
    raise ValueError(f"boom after {float(double(2.0))}")


if __name__ == "__main__":
    print("before")
    if len(sys.argv) > 1:
        sys.exit(int(sys.argv[1]))
    fail()
