"""``cheeger unsupervised`` end to end on a tiny synthetic cache: JSON keys, figures, settings."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import yaml

from cheeger.config import DataConfig, ParamsError, load_params
from cheeger.data import prepare
from cheeger.features import compute_features
from cheeger.unsupervised.command import add_parser
from cheeger.unsupervised.config import UnsupervisedConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [64, 96],
                          "model": {"encoder": "efficientnet_lite0"}}},
    "data": {"synthetic": {"seed": 3, "size": [64, 96],
                           "splits": {"train": 8, "val": 1, "test": 4}}},
    "unsupervised": {
        "clusters": 9, "majority_clusters": 12,
        "kernel": {"k": 6, "pixel_k": [5, 3]},
        "kmeans": {"sample_per_image": 24},
        "eigsh": {"eigenvectors": 3, "segments": 3},
        "neuralef": {"epochs": 1, "batch_images": 4, "hidden": 32},
        "fidelity": {"batches": 1},
        "repeat_seeds": [1],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory, repo_root):
    root = tmp_path_factory.mktemp("unsupervised")
    prepare(DataConfig.from_params(TINY), root / "prepared")
    compute_features(root / "prepared", root / "features", flip_splits=(), log=lambda s: None)
    (root / "workflow/schemas").mkdir(parents=True)  # the params file's schema, beside it
    (root / "workflow/schemas/params.schema.yaml").write_text(
        (repo_root / "workflow/schemas/params.schema.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(TINY))
    return root


def _run(root, out):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["unsupervised", "--params", str(root / "params.yaml"),
                              "--features", str(root / "features"), "--data",
                              str(root / "prepared"), "--out", str(out), "--threads", "1"])
    return args.handler(args)


def test_command_writes_every_route_and_figure(setup, tmp_path):
    assert _run(setup, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out/unsupervised.json").read_text())
    for route in ("kmeans", "eigsh", "neuralef"):
        scores = report[route]
        for key in ("miou", "pixel_accuracy", "boundary_miou", "seconds_per_image"):
            assert 0 <= scores[key] < float("inf"), (route, key)
            assert key in scores["majority"]
        assert scores["clusters"] == 9 and scores["majority"]["clusters"] == 12
        assert sorted(scores["mapping"]) == list(range(9))  # Hungarian: a permutation
        for entry in (scores, scores["majority"]):  # the main fit first, then the repeat
            assert list(entry["seeds"]) == ["0", "1"], route
            assert entry["seeds"]["0"]["miou"] == entry["miou"]
            assert 0 <= entry["seeds"]["1"]["miou"] <= 1
    # the repeat is a fit of its own: its psi differs from the main fit's
    assert report["neuralef"]["seeds"]["1"] != report["neuralef"]["seeds"]["0"]
    angles = report["neuralef"]["principal_angles"]["principal_angles"]
    assert len(angles) == 9 and all(0 <= a <= 90.001 for a in angles)
    assert angles == sorted(angles)
    for name in ("unsupervised.png", "eigenfunctions.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert not (tmp_path / "out/progress.json").exists()


def test_profile_overrides_and_unknown_keys(setup):
    params = load_params(setup / "params.yaml")
    cfg = UnsupervisedConfig.from_params(params)
    assert cfg.kernel["k"] == 6 and cfg.kernel["alpha"] == 0.3 and cfg.neuralef["beta"] == 1.0
    over = {**params, "profiles": {"tiny": {**params["profiles"]["tiny"],
                                            "unsupervised": {"neuralef": {"beta": 0.5}}}}}
    assert UnsupervisedConfig.from_params(over).neuralef["beta"] == 0.5
    with pytest.raises(ParamsError, match=r"unsupervised\.kernel\.kk: unknown key"):
        UnsupervisedConfig.from_params({**params, "unsupervised": {"kernel": {"kk": 1}}})
    for bad in ([0, 2], [2, 2], 3):
        with pytest.raises(ParamsError, match=r"unsupervised\.repeat_seeds: expected"):
            UnsupervisedConfig.from_params({**params, "unsupervised": {"repeat_seeds": bad}})
    with pytest.raises(ParamsError, match=r"unsupervised\.kernel\.k: expected an int"):
        UnsupervisedConfig.from_params({**params, "unsupervised": {"kernel": {"k": 0}}})


def test_missing_cache_is_a_clear_error(setup, tmp_path):
    shutil.copytree(setup / "features", tmp_path / "features")
    (tmp_path / "features/features.json").unlink()
    root = tmp_path
    shutil.copy(setup / "params.yaml", root / "params.yaml")
    shutil.copytree(setup / "workflow", root / "workflow")
    (root / "prepared").symlink_to(setup / "prepared")
    with pytest.raises(Exception, match="not a finished feature cache"):
        _run(root, tmp_path / "out")
