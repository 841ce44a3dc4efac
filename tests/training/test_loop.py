from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib
import json
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from cheeger import heads
from cheeger.config import TrainConfig
from cheeger.heads import ConvHead
from cheeger.linalg import EigshConvergenceError
from cheeger.training import (
    CHECKPOINT,
    FINAL,
    NonFiniteLossError,
    RunMismatchError,
    SolverError,
    load_checkpoint,
    train,
)
from cheeger.training import loop as loop_module

TIMING = ("train_seconds", "seconds_per_epoch")


def _untimed(final):
    return {k: v for k, v in final.items() if k not in TIMING}


def _same_weights(run_a, run_b):
    a, b = load_checkpoint(run_a / CHECKPOINT), load_checkpoint(run_b / CHECKPOINT)
    return all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def _history(run):
    with open(run / "history.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def straight(tiny_spec, tmp_path_factory):
    """An uninterrupted 3-epoch run with DVCLive curves: the reference of the resume tests."""
    out = tmp_path_factory.mktemp("straight") / "run"
    spec = tiny_spec(out, live=True)
    return spec, train(spec)


def test_run_writes_every_output_with_the_completion_marker_last(straight):
    spec, final = straight
    out = spec.out
    names = {p.name for p in out.iterdir()}
    assert {"checkpoint.pt", "best.pt", "history.csv", "train_log.txt", "snapshots", "dvclive",
            "final.json"} <= names  # fmt: skip
    assert not [n for n in names if n.endswith(".tmp")]
    # final.json is the newest file: written after the last checkpoint
    assert (out / FINAL).stat().st_mtime_ns >= (out / CHECKPOINT).stat().st_mtime_ns
    assert json.loads((out / FINAL).read_text()) == final
    assert final["epochs"] == 3 and final["steps"] == 6 and final["head"] == "conv"
    assert final["parameters"]["head"] == 4 * 9 + 9  # the 1x1 conv: width * K + K
    assert final["parameter_parity"]["ok"]
    assert set(final["val"]["per_class"]["iou"]) == {"sky", "building", "road", "sidewalk",
        "vegetation", "vehicle", "pole", "sign", "person"}  # fmt: skip
    history = _history(out)
    assert [row["epoch"] for row in history] == ["1", "2", "3"]
    assert float(history[-1]["val_miou"]) == final["val"]["miou"]
    assert len(list((out / "snapshots").glob("epoch_*.png"))) == 3
    with open(out / "dvclive/plots/metrics/train/loss.tsv") as handle:
        assert [r["step"] for r in csv.DictReader(handle, delimiter="\t")] == list("123456")
    with open(out / "dvclive/plots/metrics/val/miou.tsv") as handle:
        assert [r["step"] for r in csv.DictReader(handle, delimiter="\t")] == ["2", "4", "6"]
    assert not (out / "dvclive" / "dvc.yaml").exists()
    log = (out / "train_log.txt").read_text()
    assert "parameter parity (whole models): conv" in log and "epoch 3/3 step 6" in log
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == final["best"]["epoch"] and best["value"] == final["best"]["value"]
    assert final["best"]["value"] == max(float(r["val_miou"]) for r in history)


def test_same_seed_is_bit_identical_and_another_seed_is_not(straight, tiny_spec, tmp_path):
    spec, final = straight
    again = train(tiny_spec(tmp_path / "again"))
    assert _untimed(again) == _untimed(final)
    assert _same_weights(spec.out, tmp_path / "again")
    assert _history(spec.out) == _history(tmp_path / "again")
    other = train(tiny_spec(tmp_path / "other", seed=1))
    assert not _same_weights(spec.out, tmp_path / "other")
    assert other["val"]["miou"] != final["val"]["miou"]


def _crash_at(monkeypatch, call, action):
    original = torch.optim.AdamW.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)


def test_resume_after_a_crash_mid_epoch_ends_exactly_like_the_straight_run(
    straight, tiny_spec, tmp_path, monkeypatch
):
    spec, final = straight
    out = tmp_path / "run"

    def crash():
        raise KeyboardInterrupt("simulated kill")

    _crash_at(monkeypatch, 5, crash)  # step 5 of 6: in the middle of epoch 3
    with pytest.raises(KeyboardInterrupt):
        train(tiny_spec(out, live=True))
    assert load_checkpoint(out / CHECKPOINT)["epoch"] == 2 and not (out / FINAL).exists()
    monkeypatch.undo()
    resumed = train(tiny_spec(out, live=True))
    assert _untimed(resumed) == _untimed(final)
    assert _same_weights(spec.out, out) and _history(spec.out) == _history(out)
    for curve in ("train/loss.tsv", "train/grad_norm.tsv", "val/miou.tsv"):  # no redone steps
        a = (spec.out / "dvclive/plots/metrics" / curve).read_text()
        assert (out / "dvclive/plots/metrics" / curve).read_text() == a
    assert "resuming" in (out / "train_log.txt").read_text()


@pytest.mark.slow  # a fresh interpreter importing torch: seconds
def test_resume_after_sigkill_in_a_subprocess(straight, tiny_spec, tmp_path):
    spec, final = straight
    out = tmp_path / "run"
    (tmp_path / "spec.pkl").write_bytes(pickle.dumps(tiny_spec(out)))
    script = textwrap.dedent(f"""
        import os, pickle, signal, torch
        from cheeger.training import train
        torch.set_num_threads(1)  # as in the reference run: rounding may depend on threads
        original, calls = torch.optim.AdamW.step, [0]
        def step(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 4:  # first step of epoch 2's second half: after checkpoint 1
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args, **kwargs)
        torch.optim.AdamW.step = step
        train(pickle.load(open({str(tmp_path / "spec.pkl")!r}, "rb")))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert load_checkpoint(out / CHECKPOINT)["epoch"] == 1 and not (out / FINAL).exists()
    resumed = train(tiny_spec(out))
    assert _untimed(resumed) == _untimed(final) and _same_weights(spec.out, out)


def test_finished_run_is_not_retrained(straight, tiny_spec):
    spec, final = straight
    stamp = (spec.out / FINAL).stat().st_mtime_ns
    assert train(spec) == final
    assert (spec.out / FINAL).stat().st_mtime_ns == stamp
    assert "already finished" in (spec.out / "train_log.txt").read_text()


def test_other_settings_in_the_same_folder_are_refused(straight):
    spec, _ = straight
    changed = dataclasses.replace(spec, train=dataclasses.replace(spec.train, lr=0.5), seed=9)
    with pytest.raises(RunMismatchError, match=r"different settings \(seed, train\.lr\)"):
        train(changed)


class _Faulty(ConvHead):
    """Conv head that misbehaves from training call ``at`` on (NaN term, NaN gradient, solver)."""

    def __init__(self, in_channels, num_classes, at=3, fault="nan"):
        super().__init__(in_channels, num_classes)
        self.at, self.fault, self.calls = at, fault, 0

    def forward(self, features, out_size):
        out = super().forward(features, out_size)
        self.calls += self.training
        bad = self.training and self.calls >= self.at
        if self.fault == "solver" and bad:
            raise EigshConvergenceError("3 of 8 eigenpairs above tolerance")
        zero = out.logits.mean() * 0
        if self.fault == "nan":
            out.losses["rayleigh"] = zero + (float("nan") if bad else 0.0)
        else:  # finite value, NaN gradient: d sqrt(x) / dx at x = 0 times 0
            out.losses["bulk"] = torch.sqrt(zero) if bad else zero
        return out


@pytest.fixture
def faulty(monkeypatch):
    monkeypatch.setitem(heads._REGISTRY, "faulty", _Faulty)
    saved = []
    original = loop_module.save_checkpoint

    def recording_save(path, state):
        original(path, state)
        if path.name == CHECKPOINT:
            saved.append(hashlib.sha256(path.read_bytes()).hexdigest())

    monkeypatch.setattr(loop_module, "save_checkpoint", recording_save)
    return saved


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [({"at": 3, "fault": "nan"}, NonFiniteLossError, r"step 3 \(epoch 2\): loss term 'rayleigh' "
      "is nan; stopped, the last good checkpoint is kept"),
     ({"at": 4, "fault": "grad"}, NonFiniteLossError, r"step 4 \(epoch 2\): loss term 'gradient'"),
     ({"at": 3, "fault": "solver"}, SolverError, r"step 3 \(epoch 2\): the eigensolver did not "
      "converge \\(3 of 8 eigenpairs above tolerance\\)")],
)  # fmt: skip
def test_faults_stop_with_step_epoch_and_term_keeping_the_checkpoint(
    tiny_spec, tmp_path, faulty, options, error, message
):
    out = tmp_path / "run"
    with pytest.raises(error, match=message):
        train(tiny_spec(out, head="faulty", head_options=options))
    state = load_checkpoint(out / CHECKPOINT)
    assert state["epoch"] == 1 and state["step"] == 2
    assert faulty == [hashlib.sha256((out / CHECKPOINT).read_bytes()).hexdigest()]
    assert not (out / FINAL).exists()
    assert "stopped:" in (out / "train_log.txt").read_text()


def test_gradient_is_clipped_to_grad_clip(tiny_spec, tmp_path):
    spec = tiny_spec(tmp_path / "run", train=TrainConfig(epochs=1, batch_size=6, lr=1.0,
                     grad_clip=1e-3, channels_last=False, device="cpu"))  # fmt: skip
    final = train(spec)
    assert final["steps"] == 1
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    row = state["history"]["steps"][0]
    assert row["lr"] == pytest.approx(1.0) and row["grad_norm"] > 1e-3
    # first AdamW step: exp_avg = (1 - beta1) * gradient, so its global norm is 0.1 * clip
    moments = [v["exp_avg"] for v in state["optimizer"]["state"].values()]
    assert torch.linalg.vector_norm(torch.cat([m.flatten() for m in moments])) == pytest.approx(
        1e-4, rel=1e-4
    )


SPECTRAL = {"stride": 2, "k": 4, "graph_channels": 4, "rank": 2, "noise_every": 1,
            "solver": {"method": "lanczos"}}  # fmt: skip


def _capped_complement(monkeypatch, maxiter):
    """Complement solves in eigsh's backward with an iteration cap they cannot meet."""
    module = importlib.import_module("cheeger.linalg.eigsh")  # the package name is the function
    real = module.complement_term
    monkeypatch.setattr(module, "complement_term",
                        lambda *a, **kw: real(*a, **{**kw, "maxiter": maxiter}))  # fmt: skip


def test_solver_metrics_per_step_and_counts_in_final(tiny_spec, tmp_path, monkeypatch):
    _capped_complement(monkeypatch, 2)  # every complement solve ends unconverged: counted
    out = tmp_path / "run"
    spec = tiny_spec(out, head="spectral", head_options=SPECTRAL, live=True,
                     train=TrainConfig(epochs=1, batch_size=3, device="cpu"))  # fmt: skip
    with pytest.warns(RuntimeWarning, match="complement solve did not converge"):
        final = train(spec)
    rows = load_checkpoint(out / CHECKPOINT)["history"]["steps"]
    assert len(rows) == 2
    for row in rows:
        assert row["solver_method"] == "lanczos" and row["solver_matvecs"] > 0
        assert row["solver_converged"] == 1.0 and row["solver_fallback"] == 0.0
        assert row["complement_solves"] == 1 and row["complement_columns"] == 3 * 4
        assert row["complement_unconverged"] > 0 and row["complement_worst_residual"] > 0
    totals = final["solver"]
    assert totals["steps"] == 2 and totals["methods"] == {"lanczos": 2}
    assert totals["fallback_steps"] == 0 and totals["unconverged_steps"] == 0
    assert totals["matvecs"]["total"] == sum(r["solver_matvecs"] for r in rows)
    assert totals["complement"]["solves"] == 2 and totals["complement"]["steps_with_stalls"] == 2
    assert totals["complement"]["unconverged"] == sum(r["complement_unconverged"] for r in rows)
    assert json.loads((out / FINAL).read_text())["solver"] == totals
    curves = out / "dvclive" / "plots" / "metrics" / "train"
    for name in ("solver_matvecs", "solver_restarts", "solver_fallback", "complement_unconverged"):
        assert len((curves / f"{name}.tsv").read_text().splitlines()) == 3, name  # header + 2
    assert "complement solves 2" in (out / "train_log.txt").read_text()


def test_solver_strict_makes_a_stall_an_error(tiny_spec, tmp_path, monkeypatch):
    _capped_complement(monkeypatch, 2)
    options = {**SPECTRAL, "solver_strict": True}
    spec = tiny_spec(tmp_path / "run", head="spectral", head_options=options,
                     train=TrainConfig(epochs=1, batch_size=3, device="cpu"))  # fmt: skip
    with pytest.raises(SolverError, match=r"step 1 \(epoch 1\): solver_strict: eigsh backward: "
                       "the complement solve did not converge"):  # fmt: skip
        train(spec)
    assert not (tmp_path / "run" / FINAL).exists()


def test_the_conv_head_has_no_solver_counts(straight):
    _, final = straight
    assert final["solver"] is None
