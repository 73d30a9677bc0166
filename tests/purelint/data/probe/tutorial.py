"""The tutorial's pure and impure functions, each jitted and called several times.

`# expect: CODE` marks the line where `purelint probe` must report CODE, once.
"""

import random

import jax
import jax.numpy as jnp


def pure_fn_1(x):
    return 2 * x


def pure_fn_2(xs):
    ys = []
    for x in xs:
        ys.append(2 * x)
    return ys


def impure_fn_1(xs):
    xs.append(sum(xs))  # expect: PUR302
    return xs


nr_executions = 0


def impure_fn_2(x):
    global nr_executions  # expect: PUR101
    nr_executions += 1
    return 2 * x


def impure_fn_3(x):
    return nr_executions * x  # expect: PUR103


def impure_fn_4(x):
    print(x)  # expect: PUR001
    return 2 * x


def impure_fn_5(x):
    return random.random() * x  # expect: PUR201


if __name__ == "__main__":
    random.seed(0)
    for fn in (pure_fn_1, impure_fn_2, impure_fn_3, impure_fn_4, impure_fn_5):
        jitted = jax.jit(fn)
        results = []
        for _ in range(3):
            results.append(float(jitted(jnp.float32(2.0))))
            nr_executions += 1  # the global changes between calls
        print(fn.__name__, results)
    for fn in (pure_fn_2, impure_fn_1):
        jitted = jax.jit(fn)
        xs = [jnp.float32(1.0), jnp.float32(2.0)]
        print(fn.__name__, [len(jitted(xs)) for _ in range(3)], len(xs))
    print("nr_executions", nr_executions)
