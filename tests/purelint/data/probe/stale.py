"""Compiled programs that went stale: a global, a closure cell, a NumPy array changed in place,
an object's attribute. A global that changes without changing the program is not stale."""

import jax
import jax.numpy as jnp
import numpy as np

TABLE = np.array([1.0, 2.0, 3.0])
WEIGHTS = jnp.ones(3)
LOG = []


class Config:
    lr = 0.1


cfg = Config()


def make(scale):
    @jax.jit
    def scaled(x):
        return x * scale  # expect: PUR103

    def bump():
        nonlocal scale
        scale = scale + 1

    return scaled, bump


@jax.jit
def lookup(x):
    return x * TABLE  # expect: PUR103


@jax.jit
def weighted(x):
    return x * WEIGHTS  # expect: PUR103


@jax.jit
def logged(x):
    return x if len(LOG) > 100 else x + 1


@jax.jit
def lr_step(x):
    return x - cfg.lr * x  # expect: PUR103


if __name__ == "__main__":
    scaled, bump = make(2.0)
    x = jnp.ones(3)
    for i in range(3):
        print(lookup(x), weighted(x), logged(x), scaled(x), lr_step(x))
        TABLE[0] += 1
        WEIGHTS = WEIGHTS * 2
        LOG.append(i)
        bump()
        cfg.lr = cfg.lr / 2
