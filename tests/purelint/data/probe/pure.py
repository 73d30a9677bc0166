"""Pure JAX code in every transformation the probe watches: no finding expected."""

import equinox as eqx
import jax
import jax.numpy as jnp

STEPS = 3  # read while tracing, never changed
calls = 0


def count():
    global calls
    calls += 1


def counted_loss(x):
    jax.debug.callback(count)  # a host callback runs on every call: its state changes are fine
    return jnp.sum(x**2)


@jax.jit
def step(params, x, key):
    key, sub = jax.random.split(key)
    noise = jax.random.normal(sub, x.shape)
    loss, grads = jax.value_and_grad(lambda p: jnp.sum((p * x + noise) ** 2))(params)
    return params - 0.1 * grads, loss, key


def body(carry, x):
    print("scan body traced with shape", x.shape)  # a trace-time message without a tracer
    return carry + x, carry * 2


@eqx.filter_jit
def loop(xs, key):
    keys = jax.random.split(key, STEPS)
    total = jax.lax.fori_loop(0, STEPS, lambda i, c: c + jax.random.normal(jax.random.fold_in(keys[i], i)), 0.0)
    carry, ys = jax.lax.scan(body, 0.0, xs)
    branch = jax.lax.cond(carry > 0, lambda k: jax.random.normal(k), lambda k: jax.random.uniform(k), key)
    return total + carry + jnp.sum(jax.vmap(jnp.sin)(ys)) + branch


if __name__ == "__main__":
    params, key = jnp.ones(3), jax.random.key(0)
    for _ in range(4):
        key, sub = jax.random.split(key)
        params, loss, key = step(params, jnp.arange(3.0), key)
        print(float(loss), float(loop(jnp.arange(4.0), sub)), jax.grad(counted_loss)(params).tolist())
    print("callbacks:", calls)
