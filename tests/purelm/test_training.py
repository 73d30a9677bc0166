"""purelm.training from Python: configs, a Run created, stepped, stopped, resumed exactly to its stored target,
plateau annealing, keep-best, early stopping, divergence, and the learning-rate schedules."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purelm._rundir._checkpoint import CHECKPOINT_FILE, _read_all, read_meta
from purelm.training import (
    BEST_DIR,
    Callback,
    ConfigError,
    DataConfig,
    Evaluation,
    ModelConfig,
    OptimConfig,
    Run,
    RunConfig,
    ScheduleConfig,
    TrainingConfig,
    load_run_model,
    make_optimizer,
)

WORDS = ["def", "return", "self", "x", "=", "+", "(", ")", ":", "import", "for", "in", "if", "\n", "    "]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    # 1,000 bytes: 950 training bytes = 4 streams of 237 = 14 windows of 16; 50 validation bytes.
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "text.txt"
    path.write_bytes(" ".join(rng.choice(WORDS, 600)).encode()[:1000])
    return path


def tiny(path, *, run=None, optim=None, model=None, schedule=None) -> TrainingConfig:
    return TrainingConfig(
        model=ModelConfig(embed_dim=8, hidden_dim=16, **(model or {})),
        data=DataConfig(paths=(str(path),), batch_size=4, seq_len=16),
        optim=OptimConfig(**(optim or {})),
        schedule=ScheduleConfig(**(schedule or {})),
        run=RunConfig(**({"steps": 6, "eval_every": 0, "log_every": 2, "checkpoint_every": 2} | (run or {}))),
    )


def arrays(directory):
    return _read_all(directory)


def assert_same_state(a, b):
    a, b = arrays(a), arrays(b)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_log(self, run, record):
        if record["step"] >= self.step:
            run.request_stop()


def test_config_round_trip_and_what_a_resume_may_change():
    config = TrainingConfig(model=ModelConfig(cell="gru", dropout=0.2), optim=OptimConfig(optimizer="sgd", lr=20.0))
    assert TrainingConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert config.changes(config.replace(run={"steps": 5000}, optim={"lr": 5.0})) == {
        "run": {"steps": 5000},
        "optim": {"lr": 5.0},
    }
    # The library names settings as its configuration does, not as the command line's options.
    with pytest.raises(ConfigError, match=r"^model.hidden_dim=128 differs from the run's 256; a resumed run keeps it$"):
        config.changes(config.replace(model={"hidden_dim": 128}))
    with pytest.raises(ConfigError, match=r"^optim.optimizer=adam differs"):
        config.changes(config.replace(optim={"optimizer": "adam"}))
    with pytest.raises(ConfigError, match="has version 99; this purelm reads version 1"):
        TrainingConfig.from_json(config.to_json() | {"version": 99})
    unversioned = {key: value for key, value in config.to_json().items() if key != "version"}
    with pytest.raises(ConfigError, match=r'^the run configuration has no "version"; this purelm reads version 1$'):
        TrainingConfig.from_json(unversioned)
    with pytest.raises(
        ConfigError, match=r"^unknown setting model.width; the model settings are vocab_size, embed_dim"
    ):
        TrainingConfig.from_json(config.to_json() | {"model": {"width": 3}})
    with pytest.raises(
        ConfigError, match=r"^unknown section 'modle'; the sections are model, data, optim, schedule, run$"
    ):
        config.replace(modle={"hidden_dim": 3})
    with pytest.raises(ConfigError, match=r"^unknown setting run.stpes; the run settings are steps, eval_every"):
        config.replace(run={"stpes": 3})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: OptimConfig(lr=float("inf")), "optim.lr must be a finite positive number"),
        (lambda: OptimConfig(lr=0.0), "optim.lr must be a finite positive number"),
        (lambda: OptimConfig(optimizer="lion"), "optim.optimizer must be one of sgd, adam, adamw"),
        (lambda: ModelConfig(cell="transformer"), "model.cell must be one of lstm, gru, rnn_tanh, rnn_relu"),
        (
            lambda: ModelConfig(embed_dim=8, hidden_dim=16, tie_embeddings=True),
            "model.tie_embeddings needs model.embed_dim equal to model.hidden_dim",
        ),
        (lambda: ModelConfig(dropout=1.0), "model.dropout must be in [0, 1)"),
        (lambda: ScheduleConfig(anneal=0.5), "schedule.anneal must be above 1"),
        (lambda: RunConfig(steps=0), "run.steps must be a finite positive number"),
        (lambda: RunConfig(keep_best="yes"), "run.keep_best must be true or false"),
    ],
)
def test_impossible_settings_are_refused_by_field_name(make, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make()


def test_schedule_and_injected_learning_rate():
    warm = ScheduleConfig(warmup=4)
    assert [float(warm.multiplier(c)) for c in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = ScheduleConfig(kind="cosine", decay_steps=10, min_ratio=0.1)
    assert float(cosine.multiplier(0)) == pytest.approx(1.0)
    assert float(cosine.multiplier(5)) == pytest.approx(0.55)
    assert float(cosine.multiplier(10)) == pytest.approx(0.1) and float(cosine.multiplier(50)) == pytest.approx(0.1)
    # SGD with the schedule: the update is -lr * multiplier * gradient, and the lr is state.
    opt = make_optimizer(OptimConfig(optimizer="sgd", lr=2.0, grad_clip=0.0), warm)
    state = opt.init({"w": jnp.zeros(2)})
    updates, state = opt.update({"w": jnp.ones(2)}, state)
    assert np.allclose(updates["w"], -2.0 * 0.25)
    assert float(state.hyperparams["learning_rate"]) == 2.0


@pytest.mark.slow
def test_stopped_run_resumes_to_its_stored_target_bit_identically(text_file, tmp_path):
    # With dropout: its key is part of the saved state, so the masks after the resume are the same too.
    config = tiny(text_file, model={"dropout": 0.3}, run={"checkpoint_every": 4})
    straight = Run.create(config, tmp_path / "straight")
    assert straight.train().status == "done"

    split = Run.create(config, tmp_path / "split", callbacks=[StopAt(2)])
    result = split.train()
    assert result.status == "stopped" and result.step == 2 and "checkpoint saved" in result.message
    assert read_meta(tmp_path / "split")["step"] == 2
    # No options at all: the target (6), intervals and everything else come from the checkpoint.
    resumed = Run.resume(tmp_path / "split")
    assert resumed.config == split.config and resumed.step_count == 2
    assert resumed.train().status == "done" and resumed.step_count == 6
    assert_same_state(tmp_path / "straight", tmp_path / "split")
    log = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert Run.resume(tmp_path / "split").train().status == "nothing"


def test_step_evaluate_and_save_by_hand(text_file, tmp_path):
    run = Run.create(tiny(text_file, run={"eval_every": 2}), tmp_path / "hand")
    losses = run.step(2)
    assert losses.shape == (2,) and run.step_count == 2
    first = run.evaluate()
    assert isinstance(first, Evaluation) and first.count > 0 and np.isfinite(first.nats)
    run.save()
    model, tokenizer, meta = load_run_model(tmp_path / "hand")
    assert meta["step"] == 2 and tokenizer.kind == "byte" and model.hidden_dim == 16


class Scripted:
    """Validation results in a fixed order, so annealing and early stopping are deterministic."""

    def __init__(self, nats):
        self.nats = list(nats)

    def __call__(self, *args, **kwargs):
        return Evaluation.from_nats(self.nats.pop(0), 100)


def test_anneal_keep_best_and_early_stop(text_file, tmp_path):
    config = tiny(
        text_file,
        optim={"optimizer": "sgd", "lr": 1.0, "grad_clip": 0.0},
        run={"steps": 12, "eval_every": 2, "early_stop": 2},
        schedule={"anneal": 4.0},
    )
    run = Run.create(config, tmp_path / "run")
    run.evaluate = Scripted([3.0, 2.0, 2.5, 2.6, 1.0])
    result = run.train()
    # Evaluations at steps 2, 4, 6, 8: best at 4, then two without improvement: lr 1 -> 0.25 -> 0.0625, stop.
    assert result.status == "early_stop" and result.step == 8
    assert run.lr == pytest.approx(1 / 16) and run.best == {"step": 4, "val_loss": 2.0}
    assert read_meta(tmp_path / "run" / BEST_DIR)["step"] == 4
    meta = read_meta(tmp_path / "run")
    assert meta["step"] == 8 and meta["lr"] == pytest.approx(1 / 16) and meta["evals_since_best"] == 2
    # The annealed lr is optimizer state: a resume continues with it.
    resumed = Run.resume(tmp_path / "run", changes={"run": {"early_stop": 0}})
    assert resumed.lr == pytest.approx(1 / 16) and resumed.best["step"] == 4
    # A new --lr on resume replaces it.
    assert Run.resume(tmp_path / "run", changes={"optim": {"lr": 0.5}}).lr == 0.5


def test_divergence_stops_and_leaves_the_last_checkpoint(text_file, tmp_path):
    out = tmp_path / "run"
    config = tiny(text_file, optim={"optimizer": "sgd", "lr": 0.1, "grad_clip": 0.0}, run={"steps": 2})
    Run.create(config, out).train()
    before = (out / CHECKPOINT_FILE).read_bytes()
    run = Run.resume(out, changes={"run": {"steps": 8}, "optim": {"lr": 1e12}})
    result = run.train()
    assert result.status == "diverged" and "the last checkpoint (step 2) is untouched" in result.message
    assert (out / CHECKPOINT_FILE).read_bytes() == before


def test_resume_refuses_other_data_and_model_only_checkpoints(text_file, tmp_path):
    out = tmp_path / "run"
    Run.create(tiny(text_file, run={"steps": 2}), out).train()
    other = tmp_path / "other.txt"
    other.write_text("something else entirely " * 80)
    from purelm._rundir._checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="the data does not match the checkpoint"):
        Run.resume(out, changes={"data": {"paths": (str(other),)}})
    model_only = Run.resume(out).save_model(tmp_path / "model-only")
    with pytest.raises(CheckpointError, match="holds a model without training state"):
        Run.resume(model_only)


def test_a_run_stores_its_tokenizer_and_config(text_file, tmp_path):
    out = tmp_path / "run"
    Run.create(tiny(text_file, run={"steps": 2}), out).train()
    meta = read_meta(out)
    assert meta["run_format"] == 2 and meta["config"]["version"] == 1 and meta["tokenizer"] == {"kind": "byte"}
    assert TrainingConfig.from_json(meta["config"]).run.steps == 2
    assert jax.numpy.dtype(meta["model"]["dtype"]) == jnp.float32


def test_at_most_two_compiled_calls_are_in_flight(text_file, tmp_path, monkeypatch):
    # Train steps return without waiting (purelm._runtime._jit): without a bound, the loop would queue every call up
    # to the next log, and a signal or stop request would wait for all of them. Each loss here is made slow
    # to compute (~10 ms of matmuls after the step), so a queue would show as unfinished earlier results.
    run = Run.create(
        tiny(text_file, run={"steps": 8, "log_every": 8, "checkpoint_every": 8, "steps_per_call": 1}), tmp_path / "run"
    )
    square = jnp.full((256, 256), 1e-3)
    slow = jax.jit(lambda losses, m: losses + 0 * jnp.sum(jax.lax.fori_loop(0, 40, lambda _, x: jnp.tanh(x @ x), m)))
    step, unfinished, returned = run.step, [], []

    def slowed_step(count=1):
        unfinished.append(sum(not losses.is_ready() for losses in returned))
        returned.append(slow(step(count), square))
        return returned[-1]

    monkeypatch.setattr(run, "step", slowed_step)
    assert run.train().status == "done"
    assert len(unfinished) == 8 and max(unfinished) <= 1, unfinished


def _scalars(directory) -> list[tuple[str, int, float]]:
    """The (tag, step, value) of every scalar in the TensorBoard event files in `directory`, read as TensorBoard
    reads them: TFRecords (length, its CRC, an Event proto, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    found = []
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        while data:
            length = int.from_bytes(data[:8], "little")
            event = Event.FromString(data[12 : 12 + length])
            data = data[16 + length :]
            found += [(value.tag, event.step, value.simple_value) for value in event.summary.value]
    return found


def test_train_prints_progress_and_writes_csv_tensorboard_and_the_plot(text_file, tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    config = tiny(text_file, run={"eval_every": 3})
    run = Run.create(config, out, callbacks=[StopAt(4)], log_to=("jsonl", "csv", "tensorboard"))
    assert run.train().status == "stopped"
    printed = capsys.readouterr().out
    assert "step 2/6  loss" in printed and "eval  step 3: validation" in printed  # as `purelm train` prints
    resumed = Run.resume(out, log_to=("csv", "tensorboard"), progress=False)
    assert resumed.train().status == "done" and capsys.readouterr().out == ""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert (
        rows[0]
        == "step,train_loss,train_bpb,lr,elapsed_s,tokens_per_s,val_loss,val_perplexity,val_bpb,val_tokens,improved"
    )
    assert [int(row.split(",")[0]) for row in rows[1:]] == [r["step"] for r in records] == [2, 3, 4, 6, 6]
    assert [float(row.split(",")[1] or "nan") for row in rows[1:]][:1] == [records[0]["train_loss"]]
    # TensorBoard: every number of every record at its step; the steps after the stop came from the resumed run.
    scalars = _scalars(out / "tensorboard")
    expected = [
        (tag.replace("_", "/", 1) if tag.startswith(("train_", "val_")) else tag, r["step"], value)
        for r in records
        for tag, value in r.items()
        if tag != "step" and not isinstance(value, bool)
    ]
    assert [(tag, step) for tag, step, _ in sorted(scalars)] == [(tag, step) for tag, step, _ in sorted(expected)]
    assert [value for *_, value in sorted(scalars)] == pytest.approx([value for *_, value in sorted(expected)])
    assert resumed.plot() is None and (out / "loss.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="log_to names jsonl, csv, tensorboard; got 'wandb'"):
        Run.resume(out, log_to=("wandb",))


def test_config_files_round_trip_and_name_what_is_wrong(tmp_path):
    from purelm.training import config_toml, read_config_file

    config = TrainingConfig.new(
        model={"cell": "gru", "tie_embeddings": True, "embed_dim": 16, "hidden_dim": 16, "output_bias": True},
        data={"paths": (str(tmp_path / "a b.txt"), "/data/wiki"), "tokenizer": "word", "batch_size": 20},
        optim={"optimizer": "sgd", "lr": 20, "grad_clip": 0.25},
        schedule={"kind": "cosine", "anneal": 4.0},
        run={"steps": 300, "keep_best": False, "devices": 1},
    )
    path = tmp_path / "run.toml"
    path.write_text(config_toml(config, header="a comment\nreplay"))
    assert path.read_text().startswith("# a comment\n# replay\nversion = 1\n")
    assert TrainingConfig.new(**read_config_file(path)) == config
    assert 'eval_tokens = "all"' in path.read_text()  # a word run scores all of its validation split
    # Relative paths are relative to the file; an int where a float goes is a float.
    path.write_text('[data]\npaths = "corpus"\n[optim]\nlr = 20\n')
    assert read_config_file(path) == {"data": {"paths": (str(tmp_path / "corpus"),)}, "optim": {"lr": 20.0}}
    for text, message in (
        ("[model]\nembed_size = 3\n", "unknown setting model.embed_size; the model settings are vocab_size, embed"),
        ("[modle]\n", "unknown section 'modle'; the sections are model, data, optim, schedule, run"),
        ("[run]\nkeep_best = 1\n", "run.keep_best must be true or false, got 1"),
        ("[run]\nsteps = 1.5\n", "run.steps must be an integer, got 1.5"),
        ("[model]\ncell = 3\n", "model.cell must be a string, got 3"),
        ("version = 2\n", "version 2: this purelm reads configuration version 1"),
        ("[model\n", "is not valid TOML: "),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}:? .*{re.escape(message)}"):
            read_config_file(path)
