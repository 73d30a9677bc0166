"""purelint on code bases it was not tuned on: one minimal case (written here) per kind of false
finding and of missed key reuse seen there."""

import textwrap

from purelint import Config, lint_source

AUDIT = Config.from_mapping({"select": ["ALL"], "scope": "all"})


def found(code, config=None):
    return [(d.code, d.line) for d in lint_source(textwrap.dedent(code), "m.py", config=config)]


# -- PUR401 on values that are not traced ----------------------------------------------------------


def test_string_membership_in_a_dict_of_arrays_is_decided_while_tracing():
    code = """
        import jax
        @jax.jit
        def f(batch):
            y = batch["label"] if "label" in batch else None
            if "mask" not in batch:
                return batch["x"], y
            return batch["x"] * batch["mask"], y
    """
    assert found(code) == []


def test_optional_container_argument_or_an_empty_default():
    code = """
        import jax
        @jax.jit
        def f(x, extra=None, names=None):
            extra = extra or {}
            names = names or []
            return x, extra, names
    """
    assert found(code) == []


def test_str_methods_on_the_keys_of_items():
    code = """
        import jax
        @jax.jit
        def f(obs):
            out = {}
            for k, v in obs.items():
                if k.startswith("pixels/"):
                    out[k] = v / 255.0
            for k in obs.keys():
                if k.endswith("_mask"):
                    out[k] = obs[k]
            return out
    """
    assert found(code) == []


def test_values_of_items_and_other_membership_stay_traced():
    code = """
        import jax
        @jax.jit
        def f(obs, x, xs):
            for k, v in obs.items():
                if v > 0:
                    x = x + 1
            if x in xs:
                x = x + 1
            return x or 1.0
    """
    assert found(code) == [("PUR401", 6), ("PUR401", 8), ("PUR401", 10)]
