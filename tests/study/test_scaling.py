"""The scaling sweep's contract with benchmarks/eigensolvers.py, through a stand-in benchmark."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from cheeger.config import ParamsError
from cheeger.study.scaling import ScalingConfig, ScalingError, run_scaling, scaling_table

STAND_IN = '''
"""Stand-in benchmark with the real one's command line: records without timing anything."""
import argparse, json, pathlib
parser = argparse.ArgumentParser()
for name in ("--sides", "--ks", "--graphs", "--bandwidth-scales", "--solvers", "--out"):
    parser.add_argument(name)
for name in ("--repeats", "--threads"):
    parser.add_argument(name, type=int)
parser.add_argument("--timeout", type=float)
args = parser.parse_args()
if args.ks == "99":
    raise SystemExit("k too large for this stand-in")
status = {"crash": "error", "slow": "timeout"}.get(args.graphs)
records = [{"graph": args.graphs, "side": side, "n": side * side, "k": int(args.ks),
            "solver": solver, "error": "Traceback: boom",
            "status": status or ("ok" if solver != "dense" or side < 20 else "timeout"),
            "time": side * 1e-3 if solver != "dense" or side < 20 else None,
            "threads": args.threads, "repeats": args.repeats}
           for solver in args.solvers.split(",") for side in map(int, args.sides.split(","))]
pathlib.Path(args.out).write_text(json.dumps({"meta": {}, "results": records}))
'''


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "eigensolvers.py").write_text(STAND_IN)
    return root


def test_run_scaling_passes_the_sweep_and_keeps_failed_points(checkout, tmp_path):
    config = ScalingConfig(sides=(10, 20), k=4, solvers=("dense", "lobpcg"), repeats=3,
                           threads=2)  # fmt: skip
    table = run_scaling(config, tmp_path / "s.json", tmp_path / "s.csv", root=checkout)
    assert list(zip(table["solver"], table["n"], table["status"], strict=True)) == [
        ("dense", 100, "ok"), ("dense", 400, "timeout"), ("lobpcg", 100, "ok"),
        ("lobpcg", 400, "ok")]  # fmt: skip
    assert table["seconds"].tolist()[::2] == pytest.approx([0.01, 0.01])
    assert np.isnan(table.loc[1, "seconds"])  # a timed-out point has no time, not a fake one
    assert (table["k"] == 4).all() and (table["graph"] == "grid4").all()
    assert pd.read_csv(tmp_path / "s.csv").shape == table.shape
    records = json.loads((tmp_path / "s.json").read_text())["results"]
    assert {r["threads"] for r in records} == {2} and {r["repeats"] for r in records} == {3}


def test_benchmark_failures_are_reported(checkout, tmp_path):
    with pytest.raises(ScalingError, match="k too large for this stand-in"):
        run_scaling(ScalingConfig(sides=(100,), k=99), tmp_path / "s.json", tmp_path / "s.csv",
                    root=checkout)  # fmt: skip
    with pytest.raises(ScalingError, match=r"2 of 2 benchmark runs failed, e\.g\. lobpcg at "
                                           r"n=100: Traceback: boom"):  # fmt: skip
        run_scaling(ScalingConfig(sides=(10, 20), k=4, graph="crash", solvers=("lobpcg",)),
                    tmp_path / "s.json", tmp_path / "s.csv", root=checkout)  # fmt: skip
    with pytest.raises(ScalingError, match="no benchmark run finished within its cap"):
        run_scaling(ScalingConfig(sides=(10,), k=4, graph="slow", solvers=("dense",)),
                    tmp_path / "s.json", tmp_path / "s.csv", root=checkout)  # fmt: skip
    assert not (tmp_path / "s.csv").exists()  # nothing is tabulated from a failed sweep
    with pytest.raises(ScalingError, match="benchmark is missing"):
        run_scaling(ScalingConfig(), tmp_path / "s.json", tmp_path / "s.csv", root=tmp_path)


def test_scaling_table_rejects_records_it_cannot_read():
    with pytest.raises(ScalingError, match=r"missing \['status', 'time'\]"):
        scaling_table({"results": [{"solver": "a", "n": 1, "k": 1}]})
    with pytest.raises(ScalingError, match="under 'results'"):
        scaling_table({"rows": []})


def test_config_from_params(repo_root):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    config = ScalingConfig.from_params(params, "camvid")
    arguments = config.arguments()
    assert arguments[arguments.index("--sides") + 1] == ",".join(
        map(str, params["study"]["scaling"]["sides"]))  # fmt: skip
    assert arguments[arguments.index("--solvers") + 1].split(",") == list(config.solvers)
    embedded = ScalingConfig.from_params(params, "embedded")
    assert embedded.sides == tuple(params["profiles"]["embedded"]["study"]["scaling"]["sides"])
    assert embedded.k == params["study"]["scaling"]["k"]  # the shared value, not overridden
    params["study"]["scaling"]["k"] = 5000
    with pytest.raises(ParamsError, match=r"study\.scaling\.k: expected below the smallest size"):
        ScalingConfig.from_params(params, "camvid")


def test_graph_families_side_by_side(repo_root, tmp_path):
    # params give a list of families: one --graphs argument, one table sorted by family
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    config = ScalingConfig.from_params(params, "embedded")
    assert config.graphs == tuple(params["study"]["scaling"]["graph"])
    arguments = config.arguments()
    assert arguments[arguments.index("--graphs") + 1] == ",".join(config.graphs)
    assert ScalingConfig(graph="grid4").graphs == ("grid4",)
    records = [{"graph": g, "solver": s, "n": n, "k": 4, "status": "ok", "time": 0.1}
               for g in ("image8", "grid4") for s in ("lobpcg", "arpack_si") for n in (400, 100)]
    table = scaling_table({"results": records})
    assert list(table["graph"]) == ["grid4"] * 4 + ["image8"] * 4
    assert list(table["n"][:2]) == [100, 400] and list(table["solver"][:2]) == ["arpack_si"] * 2
