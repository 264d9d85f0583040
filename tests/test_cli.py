"""The headless command line: exit codes, one-line errors, the training log, Ctrl+C."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from procs import children_of

import engine
import engine.cli as cli
from engine.model import build_model
from engine.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
STEP_KEYS = {"event", "epoch", "step", "loss", "lr", "grad_rms"}
EPOCH_KEYS = {"event", "epoch", "train_loss", "val_loss", "train_acc", "val_acc", "seconds"}


def moons_graph(epochs=2, **training) -> engine.Graph:
    g = engine.Graph("moons mlp", "A small MLP for two moons.\nSecond line.")
    g.add_node("Input", {"shape": [2]}, node_id="in")
    g.add_node("Dense", {"units": 16}, node_id="h")
    g.add_node("Activation", {"fn": "tanh"}, node_id="t")
    g.add_node("Dense", {"units": 2}, node_id="out")
    g.add_edge("in", "h")
    g.add_edge("h", "t")
    g.add_edge("t", "out")
    g.training = {
        "dataset": {"name": "moons", "n": 200},
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.01},
        "batch_size": 32,
        "epochs": epochs,
        "seed": 0,
        **training,
    }
    return g


def run_app(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "app.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("app.py: ")
    assert "Traceback" not in r.stderr
    return lines[0]


# --- through app.py, as a user runs it -----------------------------------------------------------


def test_check_ok_prints_the_table(tmp_path):
    path = tmp_path / "g.json"
    moons_graph().save(path)
    r = run_app("check", path)
    assert r.returncode == 0, r.stderr
    assert "Total params: 82" in r.stdout and "h (Dense)" in r.stdout
    assert r.stderr == ""


def test_check_with_problems_exits_2(tmp_path):
    g = moons_graph()
    g.add_node("Dense", {"units": 3}, node_id="stray")
    path = tmp_path / "g.json"
    g.save(path)
    r = run_app("check", path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"app.py: {path}: block 'stray': not connected to the Input: wire a block into it, "
        "or delete it"
    ]
    assert "Total params" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["check", "does_not_exist.json"],
        ["train"],
        ["export", "x.json", "--to", "fortran"],
        ["train", "g.json", "--epochs", "many"],
    ],
)
def test_user_errors_are_one_line_exit_2(args, tmp_path):
    moons_graph().save(tmp_path / "g.json")
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    one_error_line(r)


def test_train_writes_the_log_and_weights(tmp_path):
    path, log, weights = tmp_path / "g.json", tmp_path / "run.jsonl", tmp_path / "w.npz"
    moons_graph(epochs=5).save(path)
    r = run_app(
        "train",
        path,
        "--epochs",
        2,
        "--seed",
        1,
        "--batch-size",
        16,
        "--lr",
        0.02,
        "--log",
        log,
        "--save",
        weights,
    )
    assert r.returncode == 0, r.stderr
    progress = [line for line in r.stdout.splitlines() if line.startswith("epoch ")]
    assert len(progress) == 2 and progress[0].startswith("epoch 1/2  train_loss ")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert all(set(e) == STEP_KEYS for e in steps)
    assert len(steps) == 2 * 10  # 160 training samples in batches of 16
    assert {e["lr"] for e in steps} == {0.02}
    assert [set(e) for e in events if e["event"] == "epoch"] == [EPOCH_KEYS] * 2
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "finished"
    m = build_model(moons_graph(), seed=99)
    load_weights(m, weights)  # the saved file fits the graph


def test_train_refuses_problems_and_bad_settings(tmp_path):
    g = moons_graph()
    g.set_config("out", {"units": 5})
    path = tmp_path / "g.json"
    g.save(path)
    r = run_app("train", path, "--epochs", 1)
    assert r.returncode == 2
    line = one_error_line(r)
    assert "block 'out'" in line and "2 classes" in line
    r = run_app("train", path, "--dataset", "nonsense")
    assert r.returncode == 2 and "nonsense" in one_error_line(r)
    g.training = {}
    g.save(path)
    r = run_app("train", path)
    assert r.returncode == 2 and "--dataset NAME" in one_error_line(r)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_ctrl_c_stops_cleanly(tmp_path, processes):
    path, log, weights = tmp_path / "g.json", tmp_path / "run.jsonl", tmp_path / "w.npz"
    moons_graph(epochs=100_000).save(path)
    p = subprocess.Popen(
        [
            sys.executable,
            "app.py",
            "train",
            str(path),
            "--log",
            str(log),
            "--save",
            str(weights),
            "--processes",
            processes,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        if processes == "2":
            assert line == "training in 2 processes (processes=2)\n", line + p.stderr.read()
            line = p.stdout.readline()
            helpers = children_of(p.pid)
            assert len(helpers) == 1
        assert line.startswith("epoch 1/100000"), line + p.stderr.read()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err and "stopped" in err
    end = json.loads(log.read_text().splitlines()[-1])
    assert end["event"] == "end" and end["reason"] == "stopped"
    assert end["processes"] == int(processes)
    load_weights(build_model(moons_graph()), weights)
    if processes == "2":  # the helper ended with the run
        assert not Path(f"/proc/{helpers[0]}").exists()


def test_train_refuses_a_bad_processes_setting(tmp_path):
    path = tmp_path / "g.json"
    moons_graph().save(path)
    r = run_app("train", path, "--processes", "3")
    assert r.returncode == 2
    assert "processes must be 'auto', 1 or 2, got 3" in one_error_line(r)


# --- in process (fast) ---------------------------------------------------------------------------


def test_presets_lists_name_and_first_line_sorted(tmp_path, monkeypatch, capsys):
    a = moons_graph()
    a.name, a.description = "Zebra net", "Stripes first.\nmore"
    b = moons_graph()
    b.name, b.description = "Alpha net", ""
    a.save(tmp_path / "zebra.json")
    b.save(tmp_path / "alpha.json")
    monkeypatch.setattr(cli, "PRESETS_DIR", tmp_path)
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["alpha  Alpha net", "zebra  Zebra net: Stripes first."]
    (tmp_path / "zebra.runs.json").write_text("{}")  # the app's run history: not a preset
    assert cli.main(["presets"]) == 0
    assert capsys.readouterr().out.splitlines() == out
    (tmp_path / "broken.json").write_text("{")
    assert cli.main(["presets"]) == 2
    cap = capsys.readouterr()
    assert len(cap.out.splitlines()) == 2 and cap.err.startswith("app.py: ")


def test_real_presets_command_runs(capsys):
    assert cli.main(["presets"]) == 0
    assert capsys.readouterr().err == ""


def test_help_and_usage_errors(capsys):
    assert cli.main(["--help"]) == 0
    assert "check" in capsys.readouterr().out
    for argv in ([], ["frobnicate"], ["check"], ["presets", "extra"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("app.py: ")


def test_train_in_process_diverged_exits_1(tmp_path, capsys):
    g = moons_graph(epochs=50, optimizer={"name": "sgd", "lr": 1e38})
    g.save(tmp_path / "g.json")
    assert cli.main(["train", str(tmp_path / "g.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("app.py: training diverged") and err.count("\n") == 1


def test_train_refuses_an_unwritable_save_path_before_training(tmp_path, capsys):
    moons_graph().save(tmp_path / "g.json")
    code = cli.main(
        ["train", str(tmp_path / "g.json"), "--save", str(tmp_path / "no" / "such" / "w.npz")]
    )
    cap = capsys.readouterr()
    assert code == 2 and "epoch" not in cap.out and "no folder" in cap.err


def test_export_dispatch(tmp_path, capsys):
    moons_graph().save(tmp_path / "g.json")
    out = tmp_path / "net.py"
    assert cli.main(["export", str(tmp_path / "g.json"), "--to", "numpy", "-o", str(out)]) == 0
    code = out.read_text()
    compile(code, str(out), "exec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "net.py"]


def test_log_is_flushed_per_line(tmp_path, monkeypatch):
    """Each event is on disk before the next step runs (a crash loses nothing written)."""
    path, log = tmp_path / "g.json", tmp_path / "run.jsonl"
    moons_graph(epochs=1).save(path)
    seen = []
    real_run = engine.Trainer.run

    def spying_run(self):
        for ev in real_run(self):
            seen.append(len(log.read_text().splitlines()) if os.path.exists(log) else -1)
            yield ev

    monkeypatch.setattr(engine.Trainer, "run", spying_run)
    assert cli.main(["train", str(path), "--log", str(log)]) == 0
    # when event k is produced, the k events before it are already in the file
    assert seen == list(range(len(seen)))
    lines = log.read_text().splitlines()
    assert len(lines) == len(seen) and json.loads(lines[-1])["reason"] == "finished"
    assert np.isfinite(json.loads(lines[0])["loss"])


# --- runs that must end rightly (issue 13) -------------------------------------------------------


def test_lr_1e6_ends_diverged_and_saves_sane_weights(tmp_path, capsys):
    moons_graph(epochs=20).save(tmp_path / "g.json")
    code = cli.main(
        ["train", str(tmp_path / "g.json"), "--lr", "1e6", "--save", str(tmp_path / "w.npz")]
    )
    err = capsys.readouterr().err
    assert code == 1 and "diverged" in err and "times the first step's" in err
    m = build_model(moons_graph())
    load_weights(m, tmp_path / "w.npz")
    assert max(float(np.abs(v).max()) for v in m.params.values()) < 100


def _train_saving(tmp_path, monkeypatch, interrupts_in_save):
    """Train moons and press Ctrl+C ``interrupts_in_save`` times while the weights are written
    (the signal arrives from inside np.savez, when the temporary file is already there)."""
    moons_graph(epochs=1).save(tmp_path / "g.json")
    real_savez = np.savez

    def savez_interrupted(f, **arrays):
        assert [p.suffix for p in tmp_path.iterdir()].count(".tmp") == 1
        for _ in range(interrupts_in_save):
            os.kill(os.getpid(), signal.SIGINT)
        real_savez(f, **arrays)

    monkeypatch.setattr(np, "savez", savez_interrupted)
    return cli.main(["train", str(tmp_path / "g.json"), "--save", str(tmp_path / "w.npz")])


def test_ctrl_c_during_the_final_save_finishes_it_then_exits_130(tmp_path, monkeypatch, capsys):
    # Python's own handler, or SIG_IGN when started in the background by a non-interactive shell
    before = signal.getsignal(signal.SIGINT)
    assert _train_saving(tmp_path, monkeypatch, 1) == 130
    cap = capsys.readouterr()
    assert "saved the weights" in cap.out and "finished: 1 epochs" in cap.out
    assert "finishing the save" in cap.err and "Traceback" not in cap.err
    load_weights(build_model(moons_graph()), tmp_path / "w.npz")  # complete and loadable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "w.npz"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler put back


def test_a_second_ctrl_c_during_the_save_abandons_it_cleanly(tmp_path, monkeypatch, capsys):
    assert _train_saving(tmp_path, monkeypatch, 2) == 130
    err = capsys.readouterr().err
    assert "the save was abandoned" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]  # no temporary file


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_log_on_a_full_disk_is_reported_and_the_run_still_saves(tmp_path, capsys):
    moons_graph(epochs=3).save(tmp_path / "g.json")
    code = cli.main(
        ["train", str(tmp_path / "g.json"), "--log", "/dev/full", "--save", str(tmp_path / "w")]
    )
    cap = capsys.readouterr()
    assert code == 0 and "epoch 3/3" in cap.out and "saved the weights" in cap.out
    assert cap.err == (
        "app.py: cannot write the log /dev/full (No space left on device); "
        "training goes on without it\n"
    )
    load_weights(build_model(moons_graph()), tmp_path / "w")


def test_a_log_whose_writes_fail_midway_keeps_what_it_wrote(tmp_path, monkeypatch, capsys):
    moons_graph(epochs=3).save(tmp_path / "g.json")
    real_open, writes = open, []

    class Failing:
        def __init__(self, f):
            self.f, self.name = f, f.name

        def write(self, text):
            writes.append(text)
            if len(writes) > 5:
                raise OSError(5, "Input/output error")
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(
        "builtins.open",
        lambda p, *a, **k: (
            Failing(real_open(p, *a, **k)) if str(p).endswith(".jsonl") else real_open(p, *a, **k)
        ),
    )
    log = tmp_path / "run.jsonl"
    code = cli.main(
        ["train", str(tmp_path / "g.json"), "--log", str(log), "--save", str(tmp_path / "w.npz")]
    )
    cap = capsys.readouterr()
    assert code == 0 and "epoch 3/3" in cap.out and len(writes) == 6
    assert cap.err.count("\n") == 1 and "Input/output error" in cap.err
    assert len(log.read_text().splitlines()) == 5
    load_weights(build_model(moons_graph()), tmp_path / "w.npz")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--save", ""], "argument --save: needs a file name"),
        (["--log", ""], "argument --log: needs a file name"),
        (["--save", "{tmp}"], "it is a folder"),
        (["--log", "{tmp}"], "it is a folder"),
        (["--save", "{tmp}/no/w.npz"], "no folder"),
        (["--log", "{tmp}/no/run.jsonl"], "no folder"),
        (["--save", "{tmp}/g.json"], "it is the graph file"),
        (["--log", "{tmp}/./g.json"], "it is the graph file"),
        (["--save", "{tmp}/x", "--log", "{tmp}/x"], "name the same file"),
        (["--save", "/sys/w.npz"], "cannot write in /sys"),
    ],
)
def test_outputs_that_cannot_work_are_refused_before_training(tmp_path, capsys, args, message):
    if "/sys/" in args[1] and not os.path.isdir("/sys"):
        pytest.skip("needs /sys")
    path = tmp_path / "g.json"
    moons_graph().save(path)
    before = path.read_bytes()
    code = cli.main(["train", str(path), *(a.format(tmp=tmp_path) for a in args)])
    cap = capsys.readouterr()
    assert code == 2 and "epoch" not in cap.out, cap.out
    assert cap.err.count("\n") == 1 and message in cap.err, cap.err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json"]


def test_a_hard_link_to_the_graph_is_the_graph_file(tmp_path, capsys):
    path = tmp_path / "g.json"
    moons_graph().save(path)
    os.link(path, tmp_path / "same.json")
    before = path.read_bytes()
    assert cli.main(["train", str(path), "--save", str(tmp_path / "same.json")]) == 2
    assert "it is the graph file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_check_refuses_the_data_set_options_train_refuses(tmp_path, capsys):
    g = moons_graph()
    g.training["dataset"] = {"name": "moons", "n": "many", "colour": 3}
    g.save(tmp_path / "g.json")
    assert cli.main(["check", str(tmp_path / "g.json")]) == 2
    check_err = capsys.readouterr().err
    assert "data set 'moons' has no option 'colour'" in check_err
    assert cli.main(["train", str(tmp_path / "g.json")]) == 2
    assert "data set 'moons' has no option 'colour'" in capsys.readouterr().err


def test_relative_data_paths_are_found_from_the_graph_file_folder(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        project / "data.npz",
        X=rng.standard_normal((64, 2)).astype(np.float32),
        y=rng.integers(0, 2, 64),
    )
    g = moons_graph(epochs=1)
    g.training["dataset"] = {"name": "npz", "path": "data.npz"}
    g.save(project / "g.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["train", "../project/g.json", "--save", "w.npz"]) == 0, capsys.readouterr()
    assert (elsewhere / "w.npz").is_file()  # command-line paths: from the current folder
    assert cli.main(["train", "../project/g.json", "--dataset", "npz", "--epochs", "1"]) == 0
    (project / "data.npz").rename(elsewhere / "data.npz")  # only next to the graph counts
    assert cli.main(["train", "../project/g.json"]) == 2
    err = capsys.readouterr().err
    assert "project/data.npz" in err and "not found" in err


def test_a_graph_file_with_a_utf8_bom_is_read(tmp_path, capsys):
    path = tmp_path / "g.json"
    moons_graph().save(path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert cli.main(["check", str(path)]) == 0
    assert "no problems" in capsys.readouterr().out
    assert engine.load_graph(path).name == "moons mlp"


def test_presets_lines_are_short_and_long_gives_the_descriptions(tmp_path, monkeypatch, capsys):
    a = moons_graph()
    a.name = "Wordy net"
    a.description = "A first sentence that goes on " + "and on " * 30 + ". Then more."
    a.save(tmp_path / "wordy.json")
    monkeypatch.setattr(cli, "PRESETS_DIR", tmp_path)
    assert cli.main(["presets"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert len(line) <= cli.LINE and line.startswith("wordy  Wordy net: A first") and "…" in line
    assert cli.main(["presets", "--long"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "wordy: Wordy net" and out[-1] == ""
    assert all(len(x) <= cli.LINE and x.startswith("    ") for x in out[1:-1])
    assert "Then more." in out[-2]


def test_a_closed_pipe_ends_quietly():
    """`app.py presets | head`: the reader leaves early; no "Broken pipe" message or traceback."""
    app = Path(__file__).resolve().parent.parent / "app.py"
    proc = subprocess.Popen(
        [sys.executable, str(app), "presets", "--long"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    _out, err = proc.communicate(timeout=60)
    assert err.decode() == ""
    assert proc.returncode == 141
