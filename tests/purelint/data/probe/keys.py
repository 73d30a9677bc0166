"""PRNG keys consumed twice: raw and typed, eager, inside a trace, across calls, in loop bodies."""

import jax
import jax.numpy as jnp

key = jax.random.PRNGKey(0)  # a raw uint32 key
a = jax.random.normal(key, (2,))
b = jax.random.uniform(key, (2,))  # expect: PUR204


@jax.jit
def twice(k):
    return jax.random.normal(k) + jax.random.normal(k)  # expect: PUR204


@jax.jit
def step(x, k):
    return x + jax.random.normal(k, x.shape)


@jax.jit
def branchy(p, k):  # only one branch runs: not a reuse
    return jax.lax.cond(p, lambda: jax.random.normal(k), lambda: jax.random.uniform(k))


def noisy_scan(k, xs):
    def body(c, x):
        return c + jax.random.normal(k), x  # expect: PUR204

    return jax.lax.scan(body, 0.0, xs)


def folded(k):
    return jax.lax.fori_loop(0, 4, lambda i, c: c + jax.random.normal(jax.random.fold_in(k, i)), 0.0)


CONSTANT = jax.random.key(8)
NOISE = jax.random.key(9)


def noisy_loss(x):  # under an eager `jax.grad` it runs on every call, with the same key each time
    return x * jax.random.normal(NOISE)  # expect: PUR204


@jax.jit
def constant_noise(x):
    return x + jax.random.normal(CONSTANT)  # expect: PUR204


if __name__ == "__main__":
    x, typed = jnp.zeros(3), jax.random.key(1)
    for _ in range(3):
        twice(jax.random.key(5))
        x = step(x, typed)  # expect: PUR204
    good = jax.random.key(2)
    for _ in range(3):
        good, sub = jax.random.split(good)
        x = step(x, sub)
    branchy(True, jax.random.key(3))
    branchy(False, jax.random.key(4))
    noisy_scan(jax.random.key(6), jnp.ones(4))
    folded(jax.random.key(7))
    print([float(jax.grad(noisy_loss)(1.0)) for _ in range(2)])
    print(float(constant_noise(1.0)), float(constant_noise(2.0)), x.tolist())
