"""The feature-cache job: only profiles whose model reads cached taps have it, before training."""

from __future__ import annotations

import re

from cheeger.study import layout as L


def _lite0(path: str = "results/embedded/features"):
    def edit(p):
        p["profile"] = "embedded"
        p["profiles"]["embedded"]["model"] = {"encoder": "efficientnet_lite0",
                                              "freeze_encoder": True, "features": path}  # fmt: skip

    return edit


def _jobs(output: str) -> list[tuple[str, str]]:
    """(rule, input line) of every job of a dry run, in the order Snakemake prints them."""
    return re.findall(r"^rule (\w+):\n\s+input: ([^\n]*)", output, re.MULTILINE)


def test_a_profile_without_a_cache_has_no_features_job(study_dir, sm, counts):
    result = sm(["-n", "--config", "profile=embedded"], study_dir())
    assert result.returncode == 0, result.stdout + result.stderr
    found = counts(result.stdout)
    assert "features_cache" not in found and found["train_run"] > 0, found
    assert "features.json" not in result.stdout
    # the DVC stage's target computes nothing for it (it only makes the empty folder)
    target = sm(["-n", "features", "--config", "profile=embedded"], study_dir(name="target"))
    assert target.returncode == 0, target.stdout + target.stderr
    assert set(counts(target.stdout)) == {"features", "total"}


def test_a_cached_lite0_profile_computes_the_cache_before_every_training_job(
    study_dir, sm, counts
):
    result = sm(["-n", "-p"], study_dir(_lite0()))
    assert result.returncode == 0, result.stdout + result.stderr
    found = counts(result.stdout)
    assert found["features_cache"] == 1, found
    done = "results/" + L.FEATURES_DONE.format(profile="embedded")
    jobs = _jobs(result.stdout)
    rules = [rule for rule, _ in jobs]
    first_training = min(rules.index(r) for r in ("train_run", "ablation_run") if r in rules)
    assert rules.index("features_cache") < first_training
    for rule, inputs in jobs:  # every training (and unsupervised) job reads the cache marker
        assert (done in inputs) == (rule in ("train_run", "ablation_run", "trial_run",
                                             "unsupervised_run")), rule
    shell = next(line for line in result.stdout.splitlines() if "cheeger features" in line)
    assert "--out results/embedded/features " in shell and "--threads 1" in shell


def test_a_hand_written_cache_path_other_than_the_layouts_is_refused(study_dir, sm):
    result = sm(["-n"], study_dir(_lite0("elsewhere/features")))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ("profiles.embedded.model.features: expected 'results/embedded/features'" in output
            and "got 'elsewhere/features'" in output), output  # fmt: skip
