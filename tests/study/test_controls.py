"""The controls (study.controls): their settings and checks."""

from __future__ import annotations

import copy

import pytest

from cheeger.config import ParamsError
from cheeger.study.config import Control, StudyConfig

from .conftest import small_params

CONTROLS = [
    {"name": "no_graph", "head": "spectral", "set": {"spectral.head.filter": "zero"},
     "seeds": [0, 1], "why": "the   graph\n term removed"},
    {"name": "fine", "head": "spectral", "set": {"spectral.head.stride": 4}},
]  # fmt: skip


def _with_controls(params: dict, controls: list | None = None) -> dict:
    params["study"]["controls"] = copy.deepcopy(CONTROLS if controls is None else controls)
    return params


def test_controls_run_their_seeds_default_every_seed_in_the_order_written():
    study = StudyConfig.from_params(_with_controls(small_params()))
    assert study.controls[0] == Control("no_graph", "spectral", {"spectral.head.filter": "zero"},
                                        (0, 1), "the graph term removed")  # fmt: skip
    assert study.control("fine").seeds == (0, 1, 2)
    assert study.control_runs() == [("no_graph", 0), ("no_graph", 1), ("fine", 0), ("fine", 1),
                                     ("fine", 2)]  # fmt: skip
    assert StudyConfig.from_params(small_params()).control_runs() == []
    with pytest.raises(KeyError, match="no control 'nope'"):
        study.control("nope")


def test_a_profile_controls_list_replaces_the_shared_one():
    params = _with_controls(small_params())
    params["profiles"]["embedded"]["study"] = {"controls": CONTROLS[1:]}
    assert [c.name for c in StudyConfig.from_params(params).controls] == ["fine"]
    params["profiles"]["embedded"]["study"] = {"controls": None}
    assert StudyConfig.from_params(params).controls == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c[0].update(head="nope"), r"study.controls\[0\].head: expected one of"),
        (lambda c: c[1].update(name="conv"), r"study.controls\[1\].name: 'conv' is a head's"),
        (lambda c: c[1].update(name="no_graph"), r"\[1\].name: 'no_graph' is taken"),
        (lambda c: c[0].update(seeds=[0, 7]), r"\[0\].seeds: expected a subset of the profile's"),
        (lambda c: c[1].update(set={"spectral.head.nope": 1}),
         r"study.controls\[1\].set: spectral.head.nope is not set in params.yaml"),
        (lambda c: c[1].update(set={"evaluate.boundary_ratio": 0.1}),
         "the control is evaluated as the main runs are"),
        (lambda c: c[1].update(head="conv"), "spectral.head.stride: the conv head does not"),
        (lambda c: c[1].update(set={"spectral.head.stride": 8}), "nothing would change"),
    ],
)  # fmt: skip
def test_a_control_that_cannot_run_or_changes_nothing_is_refused(edit, message):
    controls = copy.deepcopy(CONTROLS)
    edit(controls)
    params = _with_controls(small_params(), controls)
    params["spectral"]["head"]["stride"] = 8
    with pytest.raises(ParamsError, match=message):
        StudyConfig.from_params(params)


def test_a_control_named_as_the_trial_is_refused():
    params = _with_controls(small_params())
    params["study"]["trial"] = {"name": "fine", "head": "spectral",
                                "set": {"spectral.alpha": 0.3}}  # fmt: skip
    with pytest.raises(ParamsError, match=r"\[1\].name: 'fine' is taken"):
        StudyConfig.from_params(params)


def test_an_axis_written_with_no_values_is_off_for_the_profile():
    params = small_params()
    params["profiles"]["embedded"]["study"] = {
        "ablation": {"axes": {"alpha": {"key": "spectral.alpha", "values": []}}}}
    study = StudyConfig.from_params(params)
    assert [a.name for a in study.axes] == ["filter"]
    assert study.ablation_runs() == [("filter", "heat", 0), ("filter", "heat", 1)]


def test_the_camvid_lite0_profile_runs_three_heads_and_two_controls(repo_root):
    params = __import__("yaml").safe_load((repo_root / "params.yaml").read_text())
    study = StudyConfig.from_params(params, "camvid_lite0")
    assert study.runs() == [(h, s) for h in ("conv", "spectral", "neuralef") for s in range(5)]
    assert study.control_runs() == [(c, s) for c in ("plain_grid", "no_graph") for s in (0, 1)]
    assert study.control("plain_grid").settings == {"spectral.head.affinity": "uniform"}
    assert study.control("no_graph").settings == {"spectral.head.filter": "zero"}
    assert study.ablation_runs() == [] and study.axes == ()  # off for the budget (params.yaml)
    assert study.trial is None and study.report_split == "test"
