"""IO, logging, hidden random state and clocks while tracing; and their trace-time-only cousins
that are fine (a message without a tracer, a disabled log level)."""

import functools
import logging
import os
import random
import socket
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("effects")


@functools.partial(jax.jit, static_argnames="path")
def reads(x, path):
    with open(path) as f:  # expect: PUR002
        return x * float(f.read())


@jax.jit
def lists(x):
    return x + len(os.listdir("."))  # expect: PUR002


@jax.jit
def asks(x):
    name = input("name? ")  # expect: PUR002
    return x + len(name)


@jax.jit
def connects(x):
    socket.socket().close()  # expect: PUR002
    return x


@jax.jit
def logs(x):
    log.info("step")  # expect: PUR003
    warnings.warn("careful", stacklevel=2)  # expect: PUR003
    sys.stdout.write("a raw write\n")  # expect: PUR002
    log.debug("not emitted: below the level")
    print("compiling for shape", x.shape)
    return x


@jax.jit
def draws(x):
    a = random.gauss(0, 1)  # expect: PUR201
    b = np.random.rand()  # expect: PUR202
    return x + a + b + time.time() % 1  # expect: PUR203


if __name__ == "__main__":
    random.seed(0)
    np.random.seed(0)
    with open("number.txt", "w") as f:
        f.write("3\n")
    for _ in range(3):
        print(float(reads(1.0, "number.txt")), float(lists(1.0)), float(asks(1.0)), float(connects(1.0)))
        print(float(logs(1.0)), float(draws(1.0)) > 0)
    print("random after:", random.random(), np.random.rand())
