"""A print of a tracer under each transformation the probe covers."""

import equinox as eqx
import jax
import jax.numpy as jnp


def loss(w):
    print("loss", w)  # expect: PUR001
    return jnp.sum(w**2)


def per_example(x):
    print("vmap", x)  # expect: PUR001
    return x * 2


def body(c, x):
    print("scan body", c)  # expect: PUR001
    return c + x, c


def fori_body(i, c):
    print("fori", c)  # expect: PUR001
    return c + i


def while_body(c):
    print(f"while {c}")  # expect: PUR001
    return c + 1


def yes(x):
    print("yes", x)  # expect: PUR001
    return x


def no(x):
    return -x


@eqx.filter_jit
def eqx_jitted(x):
    print("eqx jit", x)  # expect: PUR001
    return x + 1


@eqx.filter_grad
def eqx_grad(x):
    print("eqx grad", x)  # expect: PUR001
    return jnp.sum(x**2)


if __name__ == "__main__":
    x = jnp.ones(3)
    for _ in range(3):
        jax.grad(loss)(x)
        jax.value_and_grad(loss)(x)
        jax.vmap(per_example)(x)
        jax.lax.scan(body, 0.0, x)
        jax.lax.fori_loop(0, 3, fori_body, 0.0)
        jax.lax.while_loop(lambda c: c < 5, while_body, 0)
        jax.lax.cond(True, yes, no, 1.0)
        eqx_jitted(x)
        eqx_grad(x)
    print("done")
