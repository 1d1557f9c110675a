"""Options and paths users get wrong: each is one error line and exit 2, or
does what a user expects (see cli.check_numbers for the --threads policy)."""
import os
import stat

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.cli import main

from ..runtime.onnx_builders import residual_net

CAT = os.path.join(os.path.dirname(ce.__file__), "data", "cat.jpg")


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc, err, *words):
    assert rc == 2, err
    assert err.startswith("cnnengine: error:") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "small.onnx"
    path.write_bytes(residual_net(np.random.default_rng(0), batch=1).SerializeToString())
    return str(path)


def test_convert_to_missing_folder(capsys, small_onnx):
    rc, _, err = run_cli(capsys, "convert", small_onnx, "/no/such/dir/x.cnn")
    one_error_line(rc, err, "/no/such/dir")


def test_model_save_to_missing_folder():
    with pytest.raises(ce.InputError, match="/no/such/dir"):
        ce.load("lenet5").save("/no/such/dir/x.cnn")


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_converted_file_mode_follows_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        ce.load("lenet5").save(tmp_path / "m.cnn")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m.cnn").st_mode) == 0o666 & ~mask
    assert not list(tmp_path.glob("*.tmp"))


def test_labels_count_must_match_classes(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("\n".join(f"label{i}" for i in range(10)) + "\n")
    rc, _, err = run_cli(capsys, "run", "efficientnet_lite0", CAT, "--labels", str(short))
    one_error_line(rc, err, "short.txt", "10 labels", "1000 classes")
    ok = tmp_path / "ok.txt"
    ok.write_text("\n".join(f"label{i}" for i in range(10)) + "\n\n")   # trailing blank lines are fine
    rc, out, err = run_cli(capsys, "run", "lenet5", CAT, "--labels", str(ok), "--top", "2")
    assert rc == 0, err
    assert "label" in out


@pytest.mark.parametrize("argv,words", [
    (["run", "lenet5", CAT, "--scale", "nan"], ["--scale", "finite"]),
    (["run", "lenet5", CAT, "--scale", "inf"], ["--scale", "finite"]),
    (["run", "lenet5", CAT, "--scale", "-1"], ["--scale", "greater than 0"]),
    (["run", "lenet5", CAT, "--std", "0"], ["--std"]),
    (["run", "lenet5", CAT, "--mean", "nan"], ["--mean", "finite"]),
    (["run", "lenet5", CAT, "--top", "0"], ["--top"]),
    (["run", "lenet5", CAT, "--threads", "-3"], ["--threads"]),
    (["run", "lenet5", CAT, "--crop", "0"], ["--crop"]),
    (["bench", "lenet5", "--runs", "0"], ["--runs"]),
    (["bench", "lenet5", "--batch", "-1"], ["--batch"]),
    (["convert", "lenet5", "/tmp/never.cnn", "--scale", "nan"], ["--scale"]),
])
def test_numeric_options_refused(capsys, argv, words):
    rc, _, err = run_cli(capsys, *argv)
    one_error_line(rc, err, *words)


def test_threads_clamped_to_cores(capsys):
    rc, out, err = run_cli(capsys, "run", "lenet5", CAT, "--threads", "100000", "--json")
    assert rc == 0, err
    import json
    assert json.loads(out)["threads"] == ce.num_cores()
    assert "100000" in err and "using %d" % ce.num_cores() in err


def test_threads_zero_means_all_cores_in_run_and_bench(capsys):
    import json
    rc, out, err = run_cli(capsys, "run", "lenet5", CAT, "--threads", "0", "--json")
    assert rc == 0, err
    assert json.loads(out)["threads"] == ce.num_cores()
    rc, out, err = run_cli(capsys, "bench", "lenet5", "--threads", "0", "--runs", "1", "--warmup", "0",
                           "--no-memory", "--json")
    assert rc == 0, err
    assert json.loads(out)["threads"] == ce.num_cores()


def test_debug_after_subcommand(capsys, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    for argv in (["--debug", "info", str(bad)], ["info", str(bad), "--debug"]):
        with pytest.raises(ce.ModelFormatError):
            main(argv)
    rc, _, err = run_cli(capsys, "info", str(bad))
    one_error_line(rc, err, "bad.onnx")


@pytest.mark.parametrize("value,warns", [("bogus", True), ("scalar", False), ("", False)])
def test_isa_env_checked_at_import(value, warns):
    import subprocess
    import sys
    env = dict(os.environ, CNNENGINE_ISA=value)
    p = subprocess.run([sys.executable, "-c", "import cnnengine"], env=env, capture_output=True, text=True,
                       timeout=60, cwd=os.path.dirname(os.path.dirname(ce.__file__)))
    assert p.returncode == 0, p.stderr
    assert ("CNNENGINE_ISA='bogus'" in p.stderr) == warns, p.stderr
