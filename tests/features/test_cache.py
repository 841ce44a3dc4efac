"""The frozen-encoder feature cache: the stored taps are the encoder's, writes resume without
recomputing, a cache of other settings or an unfinished one is refused, training reads it."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from cheeger.cli import main
from cheeger.config import AugmentConfig, DataConfig, EvaluateConfig, ModelConfig, TrainConfig
from cheeger.data import PreparedDataset, prepare
from cheeger.evaluate import evaluate_run
from cheeger.features import DONE, SETTINGS, CachedTaps, FeaturesError, compute_features
from cheeger.models import LiteFPN
from cheeger.training import RunSpec, train
from cheeger.training.errors import RunNotFoundError

TINY = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40],
                          "model": {"encoder": "efficientnet_lite0"}}},
    "data": {"synthetic": {"seed": 3, "size": [32, 40],
                           "splits": {"train": 3, "val": 2, "test": 1}}},
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "tiny"
    prepare(DataConfig.from_params(TINY), out)
    return out


@pytest.fixture(scope="module")
def cache(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "tiny"
    compute_features(data, out, batch_size=2, log=lambda line: None)
    return out


def test_every_image_and_train_flip_is_cached_as_the_encoders_float16_taps(data, cache):
    files = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*.pt"))
    assert files == ["test/00000_f0.pt", "train/00000_f0.pt", "train/00000_f1.pt",
                     "train/00001_f0.pt", "train/00001_f1.pt", "train/00002_f0.pt",
                     "train/00002_f1.pt", "val/00000_f0.pt", "val/00001_f0.pt"]  # fmt: skip
    manifest = json.loads((data / "manifest.json").read_text())["normalization"]
    model = LiteFPN(3, input_mean=manifest["mean"], input_std=manifest["std"]).eval()
    image = PreparedDataset(data, "train")[2]["image"]  # (3, H, W)
    for flip in (0, 1):
        stored = torch.load(cache / f"train/00002_f{flip}.pt", weights_only=True)
        with torch.no_grad():
            taps = model.encode((image.flip(-1) if flip else image)[None])
        assert [t.dtype for t in stored] == [torch.float16] * 4
        payload = sum(t.numel() * 2 for t in stored)  # each file holds its own image's taps only
        assert (cache / f"train/00002_f{flip}.pt").stat().st_size < payload + 4096
        for s, t in zip(stored, taps, strict=True):
            torch.testing.assert_close(s.float(), t[0], atol=2e-2, rtol=1e-2)


def test_a_rerun_computes_only_what_is_missing(data, cache, tmp_path):
    out = tmp_path / "copy"
    compute_features(data, out, log=lambda line: None)
    (out / DONE).unlink()  # as if interrupted before the end
    (out / "train/00001_f1.pt").unlink()
    (out / "val/.00000_f0.pt.123.tmp").write_bytes(b"half")  # a leftover half-written file
    kept = (out / "train/00000_f0.pt").stat().st_mtime_ns
    with pytest.raises(FeaturesError, match=f"{out}: not a finished feature cache"):
        CachedTaps(out, data, "train")
    done = compute_features(data, out, log=lambda line: None)
    assert done["computed_this_run"] == 1
    assert (out / "train/00000_f0.pt").stat().st_mtime_ns == kept
    assert compute_features(data, out, log=lambda line: None)["computed_this_run"] == 1  # as found


def test_a_cache_of_other_data_is_refused_naming_the_file(data, cache, tmp_path):
    other = tmp_path / "other"
    prepare(DataConfig.from_params({**TINY, "data": {"synthetic": {
        "seed": 4, "size": [32, 40], "splits": {"train": 3, "val": 2, "test": 1}}}}), other)
    with pytest.raises(FeaturesError, match=f"{cache / SETTINGS}: .*data_manifest_sha256"):
        compute_features(other, cache, log=lambda line: None)
    with pytest.raises(FeaturesError, match=f"{cache / DONE}: .*data_manifest_sha256"):
        CachedTaps(cache, other, "train")


def test_flips_follow_the_probability_with_the_label_flipped(data, cache):
    labels = [PreparedDataset(data, "train")[i]["label"] for i in range(3)]
    never, always = CachedTaps(cache, data, "train"), CachedTaps(cache, data, "train", hflip=1.0)
    for i in range(3):
        assert never[i]["flip"] == 0 and torch.equal(never[i]["label"], labels[i])
        item = always[i]
        assert item["flip"] == 1 and torch.equal(item["label"], labels[i].flip(-1))
        stored = torch.load(cache / f"train/{i:05d}_f1.pt", weights_only=True)
        assert all(torch.equal(a, b) for a, b in zip(item["taps"], stored, strict=True))
    assert CachedTaps(cache, data, "val", hflip=1.0)[0]["flip"] == 0  # no flips cached
    batch = CachedTaps.collate([always[0], always[1]])
    assert [tuple(t.shape) for t in batch["taps"]] == [(2, 24, 8, 10), (2, 40, 4, 5),
                                                       (2, 112, 2, 3), (2, 320, 1, 2)]  # fmt: skip


def test_a_corrupt_cached_file_is_named(data, cache, tmp_path):
    import shutil

    out = tmp_path / "corrupt"
    shutil.copytree(cache, out)
    (out / "train/00001_f0.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(FeaturesError, match=r"00001_f0\.pt: unreadable cached taps"):
        CachedTaps(out, data, "train")[1]


def test_cli_computes_the_cache_and_refuses_a_unet_profile(data, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "cli"
    assert main(["features", "--params", str(params), "--data", str(data), "--out", str(out),
                 "--threads", "1"]) == 0  # fmt: skip
    assert (out / DONE).is_file()
    unet = {**TINY, "profiles": {"tiny": {**TINY["profiles"]["tiny"], "model": {}}}}
    params.write_text(yaml.safe_dump(unet))
    assert main(["features", "--params", str(params), "--data", str(data), "--out", str(out)]) == 1
    assert "model.encoder: efficientnet_lite0" in capsys.readouterr().err


def test_training_reads_the_cache_and_refuses_an_unfinished_one(data, cache, tmp_path):
    spec = RunSpec(
        data=data, out=tmp_path / "run", head="conv", seed=0,
        model=ModelConfig(encoder="efficientnet_lite0", decoder_width=8, features=str(cache)),
        train=TrainConfig(epochs=1, batch_size=2, lr=0.01, device="cpu"),
        evaluate=EvaluateConfig(batch_size=2), augment=AugmentConfig(hflip=0.5),
        progress=False, echo=False, live=False,
    )  # fmt: skip
    calls = []
    original = LiteFPN.encode
    LiteFPN.encode = lambda self, x: calls.append(self.training) or original(self, x)
    try:
        final = train(spec)
    finally:
        LiteFPN.encode = original
    assert final["steps"] == 2
    assert calls == []  # training, validation and snapshots all read the cache
    # evaluation reads the cache too, and the last checkpoint on val repeats the run's validation
    result = evaluate_run(tmp_path / "run", data, "val", EvaluateConfig(batch_size=2,
                          checkpoint="last"), "cpu")  # fmt: skip
    assert result["model_inputs"] == "cached float16 encoder taps"
    assert result["miou"] == final["val"]["miou"]
    moved = cache.with_name("moved")
    cache.rename(moved)
    try:
        with pytest.raises(RunNotFoundError, match=f"feature cache {cache}, which is not finished"):
            evaluate_run(tmp_path / "run", data, "val", EvaluateConfig(batch_size=2), "cpu")
    finally:
        moved.rename(cache)
    broken = tmp_path / "broken"
    broken.mkdir()
    other = RunSpec(**{**spec.__dict__, "out": tmp_path / "run2",
                       "model": ModelConfig(encoder="efficientnet_lite0", features=str(broken))})
    with pytest.raises(FeaturesError, match=f"{broken}: not a finished feature cache"):
        train(other)


def test_a_cache_of_other_code_or_normalisation_is_refused_or_replaced(data, cache, tmp_path):
    """The settings name the encoder's input normalisation and the digests of the code that
    computes the taps: a cache written under other ones (here: ImageNet's normalisation, as
    before ff5757e) is refused when read, refused by a plain rerun, and rebuilt with
    ``replace=True`` (the pipeline's ``--replace``), while one of the same settings is reused."""
    out = tmp_path / "old"
    compute_features(data, out, log=lambda line: None)
    settings = json.loads((out / SETTINGS).read_text())
    assert settings["encoder_input"]["mean"] == pytest.approx([127 / 255] * 3)
    assert set(settings["code_sha256"]) == {"cache.py", "efficientnet_lite.py"}
    for name in (SETTINGS, DONE):  # as an older cache made with ImageNet's constants
        old = json.loads((out / name).read_text())
        old["encoder_input"] = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
        (out / name).write_text(json.dumps(old))
    with pytest.raises(FeaturesError, match=f"{out / DONE}: .*encoder_input"):
        CachedTaps(out, data, "train")
    with pytest.raises(FeaturesError, match=f"{out / SETTINGS}: .*encoder_input"):
        compute_features(data, out, log=lambda line: None)
    (out / DONE).unlink()  # an interrupted old cache must not be finished with new taps either
    lines = []
    done = compute_features(data, out, log=lines.append, replace=True)
    assert done["computed_this_run"] == 9 and any("replaced" in line for line in lines)
    assert CachedTaps(out, data, "train")[0]["taps"][0].dtype == torch.float16
    again = compute_features(data, out, log=lambda line: None, replace=True)  # same: reused
    assert again["computed_this_run"] == 9  # features.json present: nothing recomputed
    (out / DONE).unlink()
    reused = compute_features(data, out, log=lambda line: None, replace=True)
    assert reused["computed_this_run"] == 0


def test_replace_never_deletes_a_folder_that_is_not_a_feature_cache(data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / SETTINGS).write_text(json.dumps({"something": "else"}))
    with pytest.raises(FeaturesError, match="other settings"):
        compute_features(data, out, log=lambda line: None, replace=True)
    assert (out / SETTINGS).is_file()
