"""The training loop, its configuration, its log and the train/compare commands.

References are written here in plain NumPy (a float64 MLP forward/backward and SGD
step); the small synthetic data sets keep every test to a second or two.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from lowprec import nn
from lowprec.amp.policy import POLICIES
from lowprec.data.datasets import Dataset, make_blobs
from lowprec.training.compare import Comparison, compare, parse_run
from lowprec.training.loop import Progress, TrainConfig, TrainResult, train

# Small data: 16 features, 4 classes, 160 training rows.
BLOBS = make_blobs(200, 16, 4, seed=3)


def small(**kw):
    """A quick run on BLOBS: one hidden layer of 8, two epochs, no momentum."""
    data = kw.pop("data", BLOBS)
    kw = {
        "policy": "fp64",
        "hidden": (8,),
        "epochs": 2,
        "batch_size": 16,
        "momentum": 0.0,
        "lr": 0.1,
        **kw,
    }
    return train(TrainConfig(**kw), dataset=data)


def weights(result: TrainResult) -> dict[str, np.ndarray]:
    return {n: p.data.astype(np.float64) for n, p in result.model.named_parameters()}


# -- configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "exc", "words"),
    [
        ("policy", "fp12", ValueError, "fp16_mixed"),  # lists the presets
        ("policy", 3, TypeError, "policy"),
        ("lr", -0.1, ValueError, "lr"),
        ("lr", math.inf, ValueError, "lr"),
        ("lr", "0.1", TypeError, "lr"),
        ("epochs", 0, ValueError, "epochs"),
        ("batch_size", 2.0, TypeError, "batch_size"),
        ("accumulate", 0, ValueError, "accumulate"),
        ("loss_scale", "auto", ValueError, "dynamic"),
        ("loss_weight", 0.0, ValueError, "loss_weight"),
        ("optimizer", "lion", ValueError, "sgd"),
        ("momentum", 1.0, ValueError, "momentum"),
        ("clip", 0.0, ValueError, "clip"),
        ("hidden", (8, 0), ValueError, "hidden"),
        ("hidden", 8, TypeError, "hidden"),
        ("activation", "sigmoid", ValueError, "relu"),
        ("dataset", "mnist", ValueError, "digits"),
        ("layer_norm", 1, TypeError, "layer_norm"),
        ("seed", -1, ValueError, "seed"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, exc, words):
    with pytest.raises(exc, match=words):
        TrainConfig(**{field: value})


def test_config_dict_round_trip_and_unknown_keys():
    c = TrainConfig(
        policy="bf16_pure_sr",
        hidden=[32, 16],
        clip=1.0,
        loss_scale="static",
        init_scale=1024.0,
    )
    assert c.hidden == (32, 16)
    d = json.loads(json.dumps(c.to_dict()))
    assert TrainConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig.from_dict({**d, "warmup": 3})


def test_loss_scaling_needs_fp32_master_gradients():
    with pytest.raises(ValueError, match="master"):
        small(policy="fp16_pure", loss_scale="dynamic")


def test_batch_larger_than_data_raises():
    with pytest.raises(ValueError, match="batch_size"):
        small(batch_size=100, accumulate=2)


def test_parse_run():
    assert parse_run("fp16_mixed:dynamic") == {
        "policy": "fp16_mixed",
        "loss_scale": "dynamic",
    }
    assert parse_run("fp16_mixed:static=2**10")["init_scale"] == 1024.0
    for bad in ("fp17", "fp16_mixed:auto", "fp16_mixed:dynamic=4", ""):
        with pytest.raises(ValueError):
            parse_run(bad)


# -- the loop against a NumPy reference ------------------------------------------


def numpy_mlp_grads(params, x, y):
    """Loss and gradients of a 1-hidden-layer relu MLP with mean cross-entropy,
    in float64. ``params`` is [W1, b1, W2, b2], weights of shape (in, out)."""
    w1, b1, w2, b2 = params
    a = x @ w1 + b1
    h = np.maximum(a, 0.0)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    dz = p.copy()
    dz[np.arange(n), y] -= 1.0
    dz /= n
    da = (dz @ w2.T) * (a > 0)
    return loss, [x.T @ da, da.sum(0), h.T @ dz, dz.sum(0)]


def one_batch(n=32):
    """A data set with exactly one training batch (one step per epoch)."""
    b = BLOBS
    return Dataset(
        b.x_train[:n],
        b.y_train[:n],
        b.x_test,
        b.y_test,
        b.n_classes,
        "one-batch",
        "the first 32 rows of BLOBS",
    )


def initial_params(config):
    model = nn.MLP(
        [16, *config.hidden, 4],
        policy=POLICIES["fp64"],
        activation=config.activation,
        seed=config.seed,
    )
    return [p.data.astype(np.float64).copy() for p in model.parameters()]


@pytest.mark.parametrize("clip", [None, 0.05, 1e6])
def test_one_sgd_step_matches_numpy_with_and_without_clipping(clip):
    data = one_batch()
    config = TrainConfig(
        policy="fp64",
        hidden=(8,),
        epochs=1,
        batch_size=32,
        momentum=0.0,
        lr=0.5,
        clip=clip,
    )
    w0 = initial_params(config)
    result = train(config, dataset=data)
    loss, grads = numpy_mlp_grads(w0, data.x_train.astype(np.float64), data.y_train)
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
    factor = 1.0 if clip is None or norm <= clip else clip / (norm + 1e-6)
    got = [p.data for p in result.model.parameters()]
    for w, g, w1 in zip(w0, grads, got, strict=True):
        np.testing.assert_allclose(w1, w - 0.5 * factor * g, rtol=1e-12, atol=1e-14)
    assert result.steps[0]["loss"] == pytest.approx(loss, rel=1e-12)
    if clip == 0.05:  # the clipped update has exactly the clipped norm
        step = math.sqrt(
            sum(float(((w1 - w) ** 2).sum()) for w, w1 in zip(w0, got, strict=True))
        )
        assert norm > 0.05 and step == pytest.approx(0.5 * 0.05, rel=1e-5)


@pytest.mark.parametrize(("policy", "rtol"), [("fp64", 1e-12), ("fp32", 2e-5)])
def test_gradient_accumulation_equals_the_large_batch(policy, rtol):
    """k micro-batches of b rows give the update of one batch of k*b rows: the
    same rows, and the mean over k*b equals the sum of k means over b divided by k.
    Only the order of the float additions differs: about 1e-16 (fp64) or 1e-7
    (fp32) relative per step; over 20 steps the bound is rtol."""
    big = small(policy=policy, batch_size=32, epochs=4, momentum=0.9)
    acc = small(policy=policy, batch_size=8, accumulate=4, epochs=4, momentum=0.9)
    assert big.summary["steps"] == acc.summary["steps"] == 20
    for name, w in weights(big).items():
        np.testing.assert_allclose(
            weights(acc)[name], w, rtol=rtol, atol=rtol * np.abs(w).max(), err_msg=name
        )
    start = initial_params(big.config)
    assert all(
        not np.allclose(w0, w)
        for w0, w in zip(start, weights(big).values(), strict=True)
    )


def test_loss_weight_scales_the_sgd_step_exactly():
    """Under fp64, loss weight 2**-6 with lr * 2**6 is the same run, bit for bit
    (powers of two: every product is exact)."""
    a = small(lr=0.125)
    b = small(lr=0.125 * 64, loss_weight=2.0**-6)
    for name, w in weights(a).items():
        assert np.array_equal(weights(b)[name], w), name


def test_fp32_policy_evaluates_like_its_fp32_twin():
    r = small(policy="fp32", epochs=3)
    for e in r.evals:
        assert e["test_accuracy"] == e["test_accuracy_fp32"]
        assert e["test_loss"] == pytest.approx(e["test_loss_fp32"], rel=1e-6)
    assert r.summary["test_accuracy"] > 0.9  # blobs are easy
    assert r.summary["flushed_fraction"] == 0.0
    assert r.summary["skipped_steps"] == 0


def test_eval_schedule_and_step_records():
    r = small(epochs=2, eval_every=3)  # 10 steps per epoch
    assert [e["step"] for e in r.evals] == [0, 3, 6, 9, 12, 15, 18, 20]
    assert [s["step"] for s in r.steps] == list(range(1, 21))
    assert {s["epoch"] for s in r.steps} == {1, 2}
    layer = r.steps[0]["layers"]
    assert set(layer) == {n for n, _ in r.model.named_parameters()}
    for stats in layer.values():
        assert {
            "nonzero",
            "flushed_fraction",
            "subnormal_fraction",
            "overflow_fraction",
            "swallowed_fraction",
        } <= set(stats)
    params = [np.asarray(h) for n, h in r.histograms.items() if n != "output"]
    # every nonzero gradient value of every step is in the histograms
    assert np.sum(params) == sum(
        s["nonzero"] for step in r.steps for s in step["layers"].values()
    )
    assert np.sum(r.histograms["output"]) == sum(
        s["output"]["nonzero"] for s in r.steps
    )
    assert r.steps[0]["output"]["nonzero"] == 16 * 4  # batch x classes
    # the same counts per epoch, summing to the run's
    assert set(r.epoch_histograms) == set(r.histograms)
    for name, per_epoch in r.epoch_histograms.items():
        assert len(per_epoch) == 2
        np.testing.assert_array_equal(np.sum(per_epoch, axis=0), r.histograms[name])
    epoch_one = sum(
        s["nonzero"]
        for step in r.steps
        if step["epoch"] == 1
        for s in step["layers"].values()
    )
    assert epoch_one == sum(
        np.sum(h[0]) for n, h in r.epoch_histograms.items() if n != "output"
    )


def test_json_log_round_trip(tmp_path):
    r = small(policy="fp32", loss_scale="dynamic", init_scale=2.0**8, growth_interval=3)
    path = tmp_path / "log.json"
    r.to_json(path)
    json.loads(path.read_text())  # strict JSON
    back = TrainResult.from_json(path)
    assert back.config == r.config
    assert back.summary == r.summary
    assert back.steps == r.steps and back.evals == r.evals
    assert back.histograms == r.histograms and back.gradient_format == "fp32"
    assert back.epoch_histograms == r.epoch_histograms
    assert [s["scale"] for s in r.steps[:4]] == [256.0, 256.0, 256.0, 512.0]


def test_json_log_keeps_non_finite_losses(tmp_path):
    # a huge learning rate blows the fp32 model up: inf/NaN losses are recorded
    r = small(policy="fp32", lr=1e30)
    assert not all(math.isfinite(s["loss"]) for s in r.steps)
    r.to_json(tmp_path / "log.json")
    back = TrainResult.from_json(tmp_path / "log.json")
    assert [str(s["loss"]) for s in back.steps] == [str(s["loss"]) for s in r.steps]


def test_progress_bar_draws_to_the_stream_and_can_be_silenced():
    out = io.StringIO()
    bar = Progress(3, "run", stream=out)
    for _ in range(3):
        bar.update(loss=0.25)
    bar.close()
    assert out.getvalue() == "run [" + "#" * 30 + "] 3/3 loss 0.25\n"
    quiet = io.StringIO()
    bar = Progress(3, "run", stream=quiet, enabled=False)
    bar.update()
    bar.close()
    assert quiet.getvalue() == ""


def test_progress_of_train_goes_to_stderr(capsys):
    small(epochs=1)
    assert capsys.readouterr().err == ""
    train(
        TrainConfig(policy="fp64", hidden=(8,), epochs=1), dataset=BLOBS, progress=True
    )
    err = capsys.readouterr().err
    assert "fp64 [" in err and "5/5" in err  # 160 rows in batches of 32


# -- compare and the commands ------------------------------------------------------


def test_compare_table_and_json(tmp_path):
    c = compare(
        ["fp32", "bf16_mixed", "fp16_mixed:static=256"],
        epochs=1,
        hidden=(8,),
        dataset="blobs",
    )
    table = c.table()
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("run")
    assert lines[3].startswith("fp16_mixed:static=256")
    assert c.results["fp16_mixed:static=256"].config.init_scale == 256.0
    c.to_json(tmp_path / "c.json")
    back = Comparison.from_json(tmp_path / "c.json")
    assert list(back.results) == list(c.results)
    assert back.rows()[1]["test_accuracy"] == c.rows()[1]["test_accuracy"]


def test_compare_png(tmp_path):
    pytest.importorskip("matplotlib")
    c = compare(["fp32", "fp16_mixed"], epochs=1, hidden=(8,), dataset="blobs")
    c.plot(tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *argv):
    from lowprec.cli.training import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_train_smoke(capsys, tmp_path):
    path = tmp_path / "t.json"
    status, out, err = run_cli(
        capsys,
        "train",
        "--policy",
        "fp16_mixed",
        "--loss-scale",
        "dynamic",
        "--epochs",
        "1",
        "--dataset",
        "blobs",
        "--hidden",
        "8",
        "--lr",
        "2**-3",
        "--json",
        str(path),
        "--quiet",
    )
    assert status == 0, err
    assert "test accuracy" in out and "gradients flushed (fp16)" in out
    log = TrainResult.from_json(path)
    assert log.config.lr == 0.125 and log.config.loss_scale == "dynamic"


def test_cli_compare_smoke(capsys):
    status, out, _ = run_cli(
        capsys,
        "compare",
        "--runs",
        "fp32,bf16_mixed",
        "--epochs",
        "1",
        "--dataset",
        "blobs",
        "--quiet",
    )
    assert status == 0
    assert "bf16_mixed" in out.splitlines()[-1]


def test_cli_errors_are_reported_not_raised(capsys):
    status, _, err = run_cli(capsys, "train", "--policy", "fp12", "--quiet")
    assert status == 2 and "fp12" in err
    status, _, err = run_cli(capsys, "compare", "--runs", "fp32:sometimes")
    assert status == 2 and "sometimes" in err


def test_dataset_by_name_or_object():
    r = train(dataset="blobs", epochs=1, hidden=(8,), policy="fp32")
    assert r.config.dataset == "blobs" and r.summary["steps"] == 50  # 1600 / 32
    with pytest.raises(TypeError, match="dataset"):
        train(dataset=np.zeros((3, 3)), epochs=1)
