from __future__ import annotations

import dataclasses
import json

from cheeger.training import RunSpec, flatten_keys


def test_identity_holds_what_changes_results_and_nothing_else(tiny_data, tmp_path):
    spec = RunSpec(data=tiny_data, out=tmp_path, head="conv", seed=0)
    identity = spec.identity()
    assert json.loads(json.dumps(identity)) == identity  # storable as is
    assert identity["augment"]["scale"] == [0.75, 1.25]  # tuples stored as lists
    same = dataclasses.replace(
        spec, device="cpu", progress=False, echo=False, live=False,
        train=dataclasses.replace(spec.train, num_workers=2),
        evaluate=dataclasses.replace(spec.evaluate, checkpoint="last"),
    )  # fmt: skip
    assert same.identity() == identity
    changed = dataclasses.replace(spec, train=dataclasses.replace(spec.train, lr=0.5))
    assert flatten_keys(changed.identity())["train.lr"] == 0.5


def test_identity_tracks_the_prepared_data(tiny_data, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text((tiny_data / "manifest.json").read_text())
    before = RunSpec(data=data, out=tmp_path, head="conv", seed=0).identity()["data"]
    (data / "manifest.json").write_text((tiny_data / "manifest.json").read_text() + " ")
    assert RunSpec(data=data, out=tmp_path, head="conv", seed=0).identity()["data"] != before


def test_flatten_keys():
    assert flatten_keys({"a": {"b": {"c": 1}, "d": [1, 2]}, "e": None}) == {
        "a.b.c": 1, "a.d": [1, 2], "e": None}  # fmt: skip
