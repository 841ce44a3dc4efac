"""Helpers of the pipeline tests: a study folder with its own params.yaml, and a way to run
Snakemake on the repository's Snakefile from it (the real Snakefile, never a copy)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FRAME = REPO.parent / "shared" / "data" / "camvid" / "test" / "0001TP_008550.png"  # read-only


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 600):
    """Run ``command`` in ``cwd`` with the test interpreter's bin first on PATH."""
    environment = dict(os.environ, **(env or {}))
    environment["PATH"] = os.pathsep.join([str(BIN), environment["PATH"]])
    environment.pop("SNAKEMAKE_PROFILE", None)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def snakemake(args: list[str], cwd: Path, **kwargs):
    """``snakemake -s <repo>/Snakefile <args>`` in ``cwd``."""
    return run([str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), *args], cwd, **kwargs)


def job_counts(output: str) -> dict[str, int]:
    """The ``Job stats`` table of a Snakemake dry run as {rule: count}."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    counts = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def tiny_params(params: dict) -> dict:
    """The embedded profile shrunk to seconds per job: 32x40 scenes, 8/4/4 images, a 4-wide
    U-Net, 2 epochs, 2 seeds, one value on two ablation axes, small sweeps."""
    p = copy.deepcopy(params)
    p["profile"] = "embedded"
    block = p["profiles"]["embedded"]
    block.pop("study", None)
    block.update(resolution=[32, 40], seeds=[0, 1], ablation_seeds=[0], epochs=2, threads=1)
    block["spectral"] = {"warmup_epochs": 0, "ramp_epochs": 0}  # alpha acts from the start
    p["data"]["synthetic"].update(size=[32, 40], splits={"train": 8, "val": 4, "test": 4})
    p["model"].update(width=4, depth=2)
    p["study"]["ablation"]["axes"] = {
        "alpha": {"key": "spectral.alpha", "values": [0.0]},
        "filter": {"key": "spectral.head.filter", "values": ["heat"],
                   "with": {"key": "spectral.head.filter_options",
                            "values": {"heat": {"t": 1.0}}}},
    }  # fmt: skip
    p["study"]["scaling"] = {"sides": [16], "k": 4, "solvers": ["lobpcg", "arpack_sa"],
                             "repeats": 1, "frame": str(FRAME)}  # fmt: skip
    assert FRAME.is_file(), f"{FRAME}: the CamVid sample beside the checkout is missing"
    p["study"]["gradients"] = {"n": 16, "k": 3, "gaps": 3, "trials": 1, "eps": [0.0, 1.0e-2]}
    p["study"]["broadening"] = {"frames": 1, "sizes": [[6, 8]], "eps": [1.0e-2], "k": 4}
    return p


@pytest.fixture(scope="session")
def repo_params() -> dict:
    """The repository's params.yaml, parsed."""
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def study_dir(tmp_path, repo_params) -> Callable[..., Path]:
    """``make(edit)``: a folder with a params.yaml = the repository's after ``edit(params)``."""

    def make(edit: Callable[[dict], dict | None] | None = None, name: str = "study") -> Path:
        params = copy.deepcopy(repo_params)
        if edit is not None:
            params = edit(params) or params
        folder = tmp_path / name
        folder.mkdir()
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return folder

    return make


@pytest.fixture(scope="session")
def sm() -> Callable[..., subprocess.CompletedProcess]:
    """:func:`snakemake` (``sm(args, cwd, env=...)``)."""
    return snakemake


@pytest.fixture(scope="session")
def sh() -> Callable[..., subprocess.CompletedProcess]:
    """:func:`run` (``sh(command, cwd, env=...)``)."""
    return run


@pytest.fixture(scope="session")
def counts() -> Callable[[str], dict[str, int]]:
    """:func:`job_counts`."""
    return job_counts


@pytest.fixture(scope="session")
def shrink() -> Callable[[dict], dict]:
    """:func:`tiny_params`."""
    return tiny_params
