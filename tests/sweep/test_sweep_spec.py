"""The sweep spec: TOML tables to points, keys, and errors that name the key and
its line."""

from __future__ import annotations

import textwrap

import pytest

from lowprec.sweep.spec import Spec, canonical_config, point_key
from lowprec.training import TrainConfig


def toml(tmp_path, text: str):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
[base]
dataset = "blobs"   # 1
epochs = 1
hidden = [8]

[grid]
policy = ["fp32", "bf16_mixed"]
lr = [0.1, 0.05, 1]
hidden = [
    [8],
    [16, 16],
]

[[include]]
policy = "fp16_mixed"
loss_scale = "dynamic"

[[include]]  # the same run as a grid point: kept once
policy = "fp32"
lr = 0.1
hidden = [8]
"""


def test_grid_product_first_axis_slowest_then_includes(tmp_path):
    points = Spec.from_toml(toml(tmp_path, GOOD)).points()
    labels = [p.label for p in points]
    assert len(points) == 2 * 3 * 2 + 1  # the second include repeats a grid point
    assert labels[0] == {"policy": "fp32", "lr": 0.1, "hidden": [8]}
    assert labels[1] == {"policy": "fp32", "lr": 0.1, "hidden": [16, 16]}
    assert labels[6] == {"policy": "bf16_mixed", "lr": 0.1, "hidden": [8]}
    assert labels[-1] == {"policy": "fp16_mixed", "loss_scale": "dynamic"}
    assert len({p.key for p in points}) == len(points)
    last = points[-1].train_config()
    assert (last.policy, last.dataset, last.hidden) == ("fp16_mixed", "blobs", (8,))


def test_a_point_has_every_field_and_floats_as_floats():
    config = canonical_config(TrainConfig(lr=1, hidden=(4,)))
    assert set(config) == {f for f in TrainConfig.__dataclass_fields__}
    assert type(config["lr"]) is float and config["hidden"] == [4]
    assert type(config["epochs"]) is int


def test_the_key_is_the_run_not_its_spelling():
    a = Spec.from_dict({"grid": {"lr": [1, 0.5]}}).points()
    b = Spec.from_dict({"base": {"seed": 0}, "grid": {"lr": [1.0, 0.5]}}).points()
    assert [p.key for p in a] == [p.key for p in b]
    config = a[0].config
    assert point_key(config, "0.1.0") != point_key(config, "0.2.0")
    assert point_key(config) != point_key({**config, "seed": 1})


@pytest.mark.parametrize(
    "text, pieces",
    [
        # an unknown setting, in each table
        ("[base]\nepochs = 1\nlearning_rate = 0.1\n[grid]\nlr = [0.1]\n",
         ["base.learning_rate", "line 3", "unknown setting"]),
        ("[grid]\nlr = [0.1]\n\nbatchsize = [32]\n",
         ["grid.batchsize", "line 4", "unknown setting"]),
        ("[grid]\nlr = [0.1]\n[[include]]\nlr = 0.2\n[[include]]\npolicyy = 'fp32'\n",
         ["include[1].policyy", "line 6", "unknown setting"]),
        # an empty grid
        ("[base]\nepochs = 1\n[grid]\n", ["empty grid", "no points"]),
        ("[base]\nepochs = 1\n", ["empty grid"]),
        ("[grid]\nlr = [0.1]\npolicy = []\n", ["grid.policy", "line 3", "empty"]),
        # a type error in a value
        ("[grid]\nlr = [0.1, 'fast']\n", ["grid.lr", "line 2", "lr must be a number"]),
        ("[base]\n\nepochs = 1.5\n[grid]\nlr = [0.1]\n",
         ["base.epochs", "line 3", "epochs must be an int"]),
        ("[grid]\nlr = 0.1\n", ["grid.lr", "line 2", "must be a list of values"]),
        ("[grid]\nhidden = [\n  [8],\n  [0],\n]\n", ["grid.hidden", "line 2"]),
        ("[grid]\npolicy = ['fp32', 'fp7']\n", ["grid.policy", "line 2", "fp7"]),
        # tables
        ("[grids]\nlr = [0.1]\n", ["grids", "line 1", "unknown table"]),
        ("grid = 3\n", ["grid", "must be a table"]),
        ("[grid\nlr = [0.1]\n", ["not valid TOML", "line 1"]),
    ],
)  # fmt: skip
def test_a_bad_spec_names_the_key_and_the_line(tmp_path, text, pieces):
    path = toml(tmp_path, text)
    with pytest.raises(ValueError) as err:
        Spec.from_toml(path)
    message = str(err.value)
    assert str(path) in message
    for piece in pieces:
        assert piece in message, message


def test_from_dict_checks_the_same_way():
    with pytest.raises(ValueError, match=r"<dict>: grid\.lr: .*must be positive"):
        Spec.from_dict({"grid": {"lr": [0.1, -1.0]}})
    with pytest.raises(TypeError, match="spec must be a dict"):
        Spec.from_dict([("grid", {})])


def test_a_missing_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        Spec.from_toml(tmp_path / "nope.toml")
