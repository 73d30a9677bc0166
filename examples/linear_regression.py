"""The tutorial's warm-up: fit f(w, x) = w * x with jax.grad, parameters as a dict pytree.

The whole update is one `jax.tree.map` over parameters and gradients, so it works unchanged for
any pytree of parameters (an Equinox model included).

Run: python examples/linear_regression.py
"""

import jax
import jax.numpy as jnp


def f(params, x):
    return params["w"] * x


def loss(params, x, y):
    return jnp.mean((f(params, x) - y) ** 2)


@jax.jit
def update(params, x, y, learning_rate=0.1):
    grads = jax.grad(loss)(params, x, y)
    return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)


def main() -> None:
    x_key, noise_key = jax.random.split(jax.random.key(0))
    x = jax.random.normal(x_key, (100,))
    y = 3.0 * x + 0.1 * jax.random.normal(noise_key, (100,))
    params = {"w": jnp.array(0.0)}
    for step in range(31):
        if step % 5 == 0:
            print(f"step {step:2d}  loss {float(loss(params, x, y)):.6f}  w {float(params['w']):.4f}")
        params = update(params, x, y)


if __name__ == "__main__":
    main()
