from __future__ import annotations

import csv

from cheeger.training import RunMonitor


def _tsv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_log_history_and_live_curves(tmp_path, capsys):
    monitor = RunMonitor(tmp_path / "run", echo=True)
    monitor.log("two\nlines")
    assert capsys.readouterr().out == "two\nlines\n"
    log = (tmp_path / "run" / "train_log.txt").read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in log] == ["two", "lines"]

    monitor.write_history([{"epoch": 1, "a": 0.5}, {"epoch": 2, "a": 0.25, "b": 1}])
    rows = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert rows == [{"epoch": "1", "a": "0.5", "b": ""}, {"epoch": "2", "a": "0.25", "b": "1"}]

    steps = [{"step": s, "epoch": 1, "loss": 1.0 / s, "ce": 0.5} for s in (1, 2, 3)]
    epochs = [{"epoch": 1, "step": 3, "val_miou": 0.4, "val_boundary_miou": None}]
    monitor.start_live({"head": "conv", "seed": 0}, {"steps": steps, "epochs": epochs})
    live = tmp_path / "run" / "dvclive"
    assert [r["step"] for r in _tsv(live / "plots/metrics/train/loss.tsv")] == ["1", "2", "3"]
    assert _tsv(live / "plots/metrics/val/miou.tsv") == [{"step": "3", "miou": "0.4"}]
    assert not (live / "plots/metrics/val/boundary_miou.tsv").exists()  # undefined: not plotted
    assert not (live / "dvc.yaml").exists() and (live / "metrics.json").is_file()

    # a resumed run starts DVCLive afresh: curves hold the replayed history only
    fresh = RunMonitor(tmp_path / "run", echo=False)
    fresh.start_live({"head": "conv"}, {"steps": steps[:2], "epochs": []})
    fresh.log_step({"step": 3, "epoch": 2, "loss": 9.0}, summary=True)
    assert [r["loss"] for r in _tsv(live / "plots/metrics/train/loss.tsv")] == ["1.0", "0.5", "9.0"]
    assert not (live / "plots/metrics/val").exists()


def test_without_live_nothing_is_written_for_dvclive(tmp_path):
    monitor = RunMonitor(tmp_path, live=False, echo=False)
    monitor.start_live({}, {"steps": [{"step": 1, "loss": 1.0}], "epochs": []})
    monitor.log_step({"step": 2, "loss": 1.0})
    assert not (tmp_path / "dvclive").exists()


def test_docstring_examples():
    import doctest

    import torch

    from cheeger.training import monitor

    result = doctest.testmod(monitor, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def test_a_nan_metric_is_not_plotted(tmp_path):
    # a solver without a certificate reports solver_certified = NaN: kept in the row, not plotted
    monitor = RunMonitor(tmp_path, echo=False)
    monitor.start_live({}, {"steps": [], "epochs": []})
    monitor.log_step({"step": 1, "loss": 1.0, "solver_certified": float("nan")}, summary=True)
    train = tmp_path / "dvclive" / "plots" / "metrics" / "train"
    assert (train / "loss.tsv").is_file() and not (train / "solver_certified.tsv").exists()


def test_solver_totals_count_fallbacks_failures_and_missing_certificates():
    from cheeger.training.monitor import solver_totals

    base = {"solver_method": "lanczos", "solver_restarts": 1.0, "solver_matvecs": 10.0,
            "solver_fallback": 0.0, "solver_converged": 1.0, "solver_certified": float("nan"),
            "complement_solves": 1, "complement_columns": 8, "complement_stalled": 0,
            "complement_unconverged": 0, "complement_worst_residual": 0.0}  # fmt: skip
    rows = [base, {**base, "solver_method": "lanczos->dense", "solver_fallback": 1.0,
                   "solver_matvecs": 30.0, "complement_stalled": 2,
                   "complement_worst_residual": 0.1},
            {**base, "solver_converged": 0.5}, {"step": 4, "loss": 1.0}]  # fmt: skip
    totals = solver_totals(rows)
    assert totals["steps"] == 3 and totals["methods"] == {"lanczos": 2, "lanczos->dense": 1}
    assert totals["fallback_steps"] == 1 and totals["unconverged_steps"] == 1
    assert totals["uncertified_steps"] is None  # no certificate at all: not "0 uncertified"
    assert totals["matvecs"] == {"mean": 50.0 / 3, "max": 30.0, "total": 50.0}
    assert totals["complement"] == {"solves": 3, "columns": 24, "stalled": 2, "unconverged": 0,
                                    "steps_with_stalls": 1, "worst_residual": 0.1}  # fmt: skip
    assert solver_totals([{"step": 1, "loss": 1.0}]) is None
