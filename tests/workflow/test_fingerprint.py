"""Job fingerprints: a digest of each job's code and settings, and Snakemake reruns a job whose
fingerprint changed even in a fresh clone, where no metadata exists and every file carries the
clone's mtime (dry runs of the repository's Snakefile on a committed, finished tiny study)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from cheeger.study.fingerprint import code_digest, job_fingerprint, update_fingerprint

REPO = Path(__file__).resolve().parents[2]
DIRECTORY_OUTPUTS = ("prepared", "tables", "figures")  # the rules' directory() outputs


def test_record_ignores_comments_and_layout_but_not_code_or_settings(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f(x):\n    return x + 1\n")
    first = job_fingerprint("train_run/conv/0", {"lr": 0.01}, [source], tmp_path)
    assert first["code"] == {"m.py": code_digest(source)}  # named from the checkout
    source.write_text("# a comment\ndef f(x):  # another\n\n    return x + 1  # and one\n")
    assert job_fingerprint("train_run/conv/0", {"lr": 0.01}, [source], tmp_path) == first
    source.write_text("def f(x):\n    return x + 2\n")
    changed = [job_fingerprint("train_run/conv/0", {"lr": 0.01}, [source], tmp_path),
               job_fingerprint("train_run/conv/0", {"lr": 0.02}, [source], tmp_path),
               job_fingerprint("train_run/conv/1", {"lr": 0.01}, [source], tmp_path)]
    assert len({r["digest"] for r in [first, *changed]}) == 4
    data = tmp_path / "table.csv"  # not Python: every byte counts
    data.write_text("a,b\n")
    before = code_digest(data)
    data.write_text("a,b \n")
    assert code_digest(data) != before


def test_a_fingerprint_is_rewritten_only_when_its_record_changes(tmp_path):
    path = tmp_path / ".fingerprints" / "report.json"
    assert update_fingerprint(path, {"job": "report", "settings": 1})
    os.utime(path, (1_000_000, 1_000_000))
    assert not update_fingerprint(path, {"settings": 1, "job": "report"})
    assert path.stat().st_mtime == 1_000_000  # left alone: it reruns nothing
    assert update_fingerprint(path, {"job": "report", "settings": 2})
    assert path.stat().st_mtime > 1_000_000  # newer than the job's outputs: the job reruns
    assert json.loads(path.read_text())["settings"] == 2
    path.write_bytes(b"\xff")  # unreadable: rewritten
    assert update_fingerprint(path, {"job": "report", "settings": 2})


def _git(sh, args, cwd):
    result = sh(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def finished_study(tmp_path, repo_params, shrink, sh):
    """A git repository holding the project and every output of a tiny study, committed (the
    outputs are placeholders: a dry run reads none of them)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("Snakefile", ".gitignore"):
        shutil.copy2(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("workflow", "cheeger", "benchmarks"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    params = shrink(repo_params)
    params["profiles"]["tiny"] = params["profiles"].pop("embedded")  # committed, unlike embedded
    params["profile"] = "tiny"
    (source / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    summary = sh(["snakemake", "--summary"], source)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    rows = [line.split("\t") for line in summary.stdout.splitlines()]
    start = next(i for i, row in enumerate(rows) if row[0] == "output_file")
    outputs = [Path(row[0]) for row in rows[start + 1 :] if len(row) > 2]
    assert (source / "results/tiny/.fingerprints/train_run/conv/0.json").is_file()
    for output in outputs:
        target = source / output
        if output.name in DIRECTORY_OUTPUTS:
            target.mkdir(parents=True, exist_ok=True)
            target = target / "placeholder"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("made by the job\n")
    _git(sh, ["init", "-q"], source)
    _git(sh, ["add", "-A"], source)
    _git(sh, ["commit", "-qm", "a finished tiny study"], source)
    return source


def _fresh_clone_dry_run(source: Path, name: str, sh, newer: tuple[str, ...] = ()) -> str:
    """Clone ``source``, restore the outputs git ignores (prepared data and runs: what `dvc
    pull` restores), give every file one mtime (a fresh checkout: mtimes say nothing) but the
    files ``newer`` a later one (edited in a working checkout after the outputs were made), and
    dry-run the clone's Snakefile; its output."""
    clone = source.parent / name
    _git(sh, ["clone", "-q", str(source), str(clone)], source.parent)
    ignored = _git(sh, ["ls-files", "--others", "--ignored", "--exclude-standard", "results"],
                   source).stdout.split()  # fmt: skip
    assert any("/runs/" in path for path in ignored)
    for path in ignored:
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / path, clone / path)
    stamp = 1_700_000_000
    for folder, _, files in os.walk(clone):
        if ".git" not in Path(folder).parts:
            for entry in [*files, "."]:  # the folder too: directory outputs count by theirs
                os.utime(Path(folder) / entry, (stamp, stamp))
    for path in newer:
        os.utime(clone / path, (stamp + 3600, stamp + 3600))
    result = sh(["snakemake", "-n"], clone)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _commit_edit(source: Path, path: str, edit, sh) -> None:
    file = source / path
    file.write_text(edit(file.read_text()))
    _git(sh, ["commit", "-qam", f"edit {path}"], source)


@pytest.mark.slow
def test_a_fresh_clone_reruns_the_jobs_whose_code_changed_and_only_those(
    finished_study, sh, counts
):
    assert "Nothing to be done" in _fresh_clone_dry_run(finished_study, "clean", sh)
    # a comment in the report code changes no fingerprint: nothing to rerun
    _commit_edit(finished_study, "cheeger/study/report.py",
                 lambda text: text.replace("\n\n\ndef ", "\n\n\n# a new comment\ndef ", 1), sh)
    assert "Nothing to be done" in _fresh_clone_dry_run(finished_study, "comment", sh)
    # nor in a working checkout, where the edited file is newer than every output
    edited = ("cheeger/study/report.py",)
    assert "Nothing to be done" in _fresh_clone_dry_run(finished_study, "edited", sh, edited)
    # a change of training code (committed without rerunning the study) reruns every training
    # job and what reads its runs, not the sweeps
    _commit_edit(finished_study, "cheeger/training/loss.py",
                 lambda text: text + "\n_FINGERPRINT_TEST = 1\n", sh)
    found = counts(_fresh_clone_dry_run(finished_study, "training", sh))
    assert found["train_run"] == 4 and found["ablation_run"] == 2, found  # 2 heads x 2 seeds
    assert found["evaluate_run"] == 5 and found["report"] == 1, found  # + the val baseline
    assert not {"prepare", "scaling", "gradients"} & set(found), found
    # a change of the report code reruns the report and the trial comparison, no training
    _commit_edit(finished_study, "cheeger/training/loss.py",
                 lambda text: text.replace("\n_FINGERPRINT_TEST = 1\n", ""), sh)
    _commit_edit(finished_study, "cheeger/study/report.py",
                 lambda text: text + "\n_FINGERPRINT_TEST = 1\n", sh)
    found = counts(_fresh_clone_dry_run(finished_study, "report", sh))
    assert found.get("report") == 1 and found.get("trial_compare") == 1, found
    assert "train_run" not in found and "evaluate_run" not in found, found


@pytest.mark.parametrize(
    ("state", "kept"),
    [("absent", False), ("unfinished, same fingerprint", True),
     ("unfinished, other fingerprint", False), ("unfinished, no fingerprint", False),
     ("finished, same fingerprint", False)],
)  # fmt: skip
def test_a_run_folder_is_resumed_only_if_unfinished_and_begun_under_this_fingerprint(
    tmp_path, state, kept
):
    """The shell before every `cheeger train` (layout.FRESH_RUN), run by bash as the rules do."""
    import subprocess
    from types import SimpleNamespace

    from cheeger.study.layout import FRESH_RUN

    run, fingerprint = tmp_path / "run", tmp_path / "fp.json"
    fingerprint.write_text('{"digest": "new"}')
    if state != "absent":
        run.mkdir()
        (run / "checkpoint.pt").write_text("epoch 3")
        if "same" in state:
            shutil.copy(fingerprint, run / "fingerprint.json")
        elif "other" in state:
            (run / "fingerprint.json").write_text('{"digest": "old"}')
        if state.startswith("finished"):
            (run / "final.json").write_text("{}")
    command = FRESH_RUN.format(params=SimpleNamespace(run=run),
                               input=SimpleNamespace(fingerprint=fingerprint)) + "true"
    subprocess.run(["bash", "-c", command], check=True)
    assert (run / "checkpoint.pt").exists() == kept
    assert (run / "fingerprint.json").read_text() == fingerprint.read_text()
    assert not (run / "final.json").exists()
