import re
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOST = "[4, 8, 15, 16, 23, 42]"


def run_example(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_lost_numbers_prints_both_frameworks_before_and_after(capsys):
    pytest.importorskip("torch")
    out = run_example("lost_numbers.py", capsys)
    lines = out.splitlines()
    # Both frameworks start from the same weights: the same greedy sample before training.
    before = re.findall(r"\[[\d, ]+\]", next(line for line in lines if line.startswith("Sample before:")))
    after = re.findall(r"\[[\d, ]+\]", next(line for line in lines if line.startswith("Sample after:")))
    assert len(before) == 2 and before[0] == before[1] != LOST
    assert after == [LOST, LOST]
    losses = [[float(x) for x in re.findall(r"\d+\.\d+", line)] for line in lines if line.startswith("Loss")]
    assert len(losses) == 3
    assert all(abs(torch_loss - jax_loss) < 1e-4 * torch_loss for torch_loss, jax_loss in losses)
    assert losses[-1][0] < losses[0][0] / 5


def test_linear_regression_loss_goes_down(capsys):
    out = run_example("linear_regression.py", capsys)
    rows = re.findall(r"loss (\d+\.\d+)  w (-?\d+\.\d+)", out)
    losses = [float(loss) for loss, _ in rows]
    assert len(losses) > 3
    assert losses == sorted(losses, reverse=True)
    assert abs(float(rows[-1][1]) - 3.0) < 0.05
