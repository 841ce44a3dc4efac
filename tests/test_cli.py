from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from cheeger.cli import COMMANDS, main
from cheeger.data.errors import DataNotFoundError
from cheeger.data.prepared import load_manifest


@pytest.fixture
def params_file(tmp_path):
    params = {
        "profile": "tiny",
        "profiles": {
            "tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40]},
            "cs": {"dataset": "cityscapes", "root": "no/such/folder", "resolution": [8, 16]},
        },
        "data": {"synthetic": {"seed": 4, "size": [48, 64], "splits": {"train": 3, "val": 2}}},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_prepare_writes_a_finished_preparation(params_file, tmp_path, capsys):
    out = tmp_path / "results" / "prepared" / "tiny"
    assert main(["prepare", "--params", str(params_file), "--out", str(out)]) == 0
    manifest = load_manifest(out)
    assert manifest["profile"] == "tiny" and manifest["resolution"] == [32, 40]
    assert manifest["source"]["seed"] == 4
    assert {s: e["size"] for s, e in manifest["splits"].items()} == {"train": 3, "val": 2}
    assert capsys.readouterr().out.strip() == (
        f"prepared tiny (synthetic): train 3, val 2 at 32x40 -> {out}"
    )


def test_limit_option_overrides_the_profile(params_file, tmp_path):
    out = tmp_path / "p"
    assert main(["prepare", "--params", str(params_file), "--out", str(out), "--limit", "1"]) == 0
    manifest = load_manifest(out)
    assert manifest["limit"] == 1 and manifest["splits"]["train"]["size"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--profile", "nope"], "cheeger prepare: error: params.yaml: profile: unknown profile"),
        (["--profile", "cs"], "(from profiles.cs.root) not found. Cityscapes needs a free "
                              "registration"),
        (["--limit", "0"], "cheeger prepare: error: --limit: expected a positive int, got 0"),
    ],
)  # fmt: skip
def test_expected_errors_exit_1_with_one_line_on_stderr(params_file, tmp_path, capsys, extra,
                                                        message):  # fmt: skip
    code = main(["prepare", "--params", str(params_file), "--out", str(tmp_path / "o"), *extra])
    captured = capsys.readouterr()
    assert code == 1 and message in captured.err
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_params_file_and_debug_traceback(params_file, tmp_path, capsys):
    assert main(["prepare", "--params", str(tmp_path / "none.yaml"), "--out", "x"]) == 1
    assert "none.yaml: cannot read params file" in capsys.readouterr().err
    with pytest.raises(DataNotFoundError):
        main(["--debug", "prepare", "--params", str(params_file), "--profile", "cs",
              "--out", str(tmp_path / "o")])  # fmt: skip


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["prepare", "--params", "params.yaml"])  # --out is required
    assert info.value.code == 2 and "--out" in capsys.readouterr().err


def test_module_entry_point_reports_errors_without_traceback(params_file, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cheeger.cli", "prepare", "--params", str(params_file),
         "--profile", "cs", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("cheeger prepare: error: Cityscapes root")
    assert "Traceback" not in result.stderr


def test_every_table_entry_declares_its_subcommand(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: cheeger {name} ")


def test_top_level_help_imports_no_command_module():
    code = ("import sys\nfrom cheeger.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('cheeger.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1] == "['cheeger.cli']"
    for line in COMMANDS.values():
        assert line[1] in " ".join(result.stdout.split())
