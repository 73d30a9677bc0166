"""Pure and impure functions, the ones every JAX tutorial shows, for purelint to judge.

This file is impure on purpose and excluded from the repository's own lint run (see
[tool.purelint] in pyproject.toml). Try:

    purelint examples/purity.py              # traced functions only (the default scope)
    purelint --scope all examples/purity.py  # a strict purity audit of every function

Running it prints what JAX does with each function: impure code runs once, at trace time.
"""

import random
import time

import jax
import jax.numpy as jnp

counter = 0
history = []


def double(x):
    """Pure: the output depends only on the input."""
    return 2 * x


def squares(n):
    """Pure: the list is built locally, nobody else can see it change."""
    out = []
    for i in range(n):
        out.append(i * i)
    return out


def append_to(items, x):
    """Impure: mutates its argument."""
    items.append(x)
    return items


def bump_counter():
    """Impure: rebinds a global."""
    global counter
    counter += 1
    return counter


def read_counter(x):
    """Impure: reads a global that changes."""
    return x + counter


def ask():
    """Impure: input, output and the clock."""
    name = input("name? ")
    print("hello", name)
    return time.time()


def noisy(x):
    """Impure: Python's random module."""
    return x + random.random()


@jax.jit
def jitted_print(x):
    print("tracing with", x)  # prints a tracer, once
    return double(x)


@jax.jit
def jitted_global(x):
    history.append(x)  # leaks a tracer into a module list
    return read_counter(x)  # JAX freezes `counter` at its trace-time value


@jax.jit
def jitted_noise(x):
    return x + random.random()  # the same "random" number on every call


@jax.jit
def jitted_pure(x):
    return jnp.sin(x) * 2


def torch_style_step(params, grads, lr=0.1):
    """A training step written with PyTorch habits, then jitted below."""
    for name in params:
        params[name] -= lr * grads[name].detach()
        grads[name].zero_()
    return params


torch_style_step = jax.jit(torch_style_step)


def jax_style_step(params, grads, lr=0.1):
    """The same step, pure: new arrays out, nothing changed in place."""
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


jax_style_step = jax.jit(jax_style_step)


if __name__ == "__main__":
    x = jnp.float32(1.0)
    jitted_print(x)
    jitted_print(x)  # nothing printed the second time: cached
    print("jitted_global:", jitted_global(x))
    counter = 10
    print("jitted_global:", jitted_global(x), "(still adds 0: counter was frozen when traced)")
    print("noise:", jitted_noise(x), jitted_noise(x), "(equal)")
    params = {"w": jnp.ones(3)}
    print("pure step:", jax_style_step(params, {"w": jnp.ones(3)}))
