"""mask_padding: sequence targets of class 0 (padding) count in neither the loss, its gradient,
nor the accuracy; the same numbers as PyTorch's ignore_index=0."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.errors import ConfigError
from engine.export import export_code
from engine.losses import get_loss
from engine.training_spec import check_training


def test_masked_cross_entropy_is_the_mean_over_the_other_targets_and_its_gradient():
    rng = np.random.default_rng(0)
    out = rng.normal(size=(3, 5, 4))
    y = rng.integers(0, 4, (3, 5))
    y[0, 3:] = 0
    ce, masked = get_loss("cross_entropy"), get_loss("cross_entropy", ignore_index=0)
    keep = y != 0
    full = np.log(np.exp(out).sum(-1)) - np.take_along_axis(out, y[..., None], -1)[..., 0]
    assert masked.forward(out, y) == pytest.approx(full[keep].mean())
    assert ce.forward(out, y) == pytest.approx(full.mean())
    g = masked.backward()
    assert np.all(g[~keep] == 0)
    eps, k = 1e-6, (1, 2, 3)
    for idx in [(0, 1, 2), (2, 4, 1), k]:
        d = np.zeros_like(out)
        d[idx] = eps
        num = (masked.forward(out + d, y) - masked.forward(out - d, y)) / (2 * eps)
        assert g[idx] == pytest.approx(num, abs=1e-7)
    assert masked.counted(y) == keep.sum() and masked.hits(out, y) == np.sum(
        (out.argmax(-1) == y) & keep
    )
    torch = pytest.importorskip("torch")
    t = torch.nn.functional.cross_entropy(
        torch.from_numpy(out).reshape(-1, 4), torch.from_numpy(y).reshape(-1), ignore_index=0
    )
    assert float(t) == pytest.approx(masked.forward(out, y), rel=1e-10)


def caption_graph(mask: bool) -> engine.Graph:
    g = engine.load_graph("presets/captioning_digits.json")
    g.set_meta(
        "training",
        {
            **g.training,
            "dataset": {"name": "digit_strips", "n": 200},
            "epochs": 1,
            **({"mask_padding": True} if mask else {}),
        },
    )
    return g


def test_a_masked_run_counts_only_the_words_before_padding():
    trainer = engine.Trainer.from_graph(caption_graph(True))
    assert trainer.processes == 1 and trainer.spec["mask_padding"] is True
    events = list(trainer.run())
    assert events[-1]["reason"] == "finished"
    Xv, yv = trainer.val_data
    out = trainer.model.forward(Xv, training=False)
    keep = yv != 0
    right = (out.argmax(-1) == yv) & keep
    loss, acc = trainer.evaluate(Xv, yv)
    assert acc == pytest.approx(right.sum() / keep.sum())
    assert loss == pytest.approx(
        get_loss("cross_entropy", ignore_index=0).forward(out, yv), rel=1e-5
    )
    assert "mask_padding" not in engine.Trainer.from_graph(caption_graph(False)).spec


def test_mask_padding_is_refused_where_it_cannot_apply():
    with pytest.raises(ConfigError, match="needs the loss cross_entropy"):
        check_training({"dataset": "sine", "loss": "mse", "mask_padding": True})
    assert "mask_padding" in export_code(caption_graph(True), "numpy")
    # one class per sample (digits): class 0 is a real class, not padding
    g = engine.load_graph("tests/golden/graphs/mlp.json")
    g.set_meta("training", {**g.training, "mask_padding": True})
    for attempt in (lambda: engine.Trainer.from_graph(g), lambda: export_code(g, "pytorch")):
        with pytest.raises(ConfigError, match="one class per sample") as e:
            attempt()
        assert "\n" not in e.value.message


def test_the_confusion_matrix_leaves_padding_out():
    from engine.training_process import LiveRun

    got = []
    g = caption_graph(True)
    live = LiveRun(g.to_dict(), g.training, lambda kind, payload: got.append((kind, payload)))
    live.run()
    last = [p for k, p in got if k == "epoch"][-1]
    _, yv = live.trainer.val_data
    assert int(last["confusion"].sum()) == int(np.count_nonzero(yv)) < yv.size
    assert last["confusion"][0].sum() == 0  # no row for the padding class


def test_the_pytorch_script_masks_padding_as_the_engine(tmp_path):
    """Same weights and batches on the padded digit strips: the script's first losses, its
    evaluation (loss and accuracy) equal the engine's within 1e-5."""
    torch = pytest.importorskip("torch")
    from export_torch_support import exported
    from test_export_torch import engine_losses, torch_losses

    g = caption_graph(True)
    trainer = engine.Trainer.from_graph(g)
    _, yv = trainer.val_data
    assert np.any(yv == 0)  # padded targets present
    ours = torch_losses(g, 3, tmp_path)
    ref = engine_losses(g, 3)
    np.testing.assert_allclose([e["loss"] for e in ours], ref, rtol=1e-5)
    unmasked = engine_losses(caption_graph(False), 1)
    assert abs(unmasked[0] - ref[0]) > 1e-3  # the mask changes the number compared
    mod = exported(g, tmp_path, weights=str(tmp_path / "w0.npz"), name="eval_script")
    Xv, yv = trainer.val_data
    loss, acc = mod.evaluate(
        mod.build_model(), torch.from_numpy(Xv), torch.from_numpy(yv), torch.device("cpu")
    )
    want_loss, want_acc = trainer.evaluate(Xv, yv)
    assert loss == pytest.approx(want_loss, rel=1e-5) and acc == pytest.approx(want_acc)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_the_pytorch_script_samples_its_decoder_inputs_as_the_engine(ratio, tmp_path):
    """scheduled_sampling in the PyTorch script: the engine's procedure and random stream, so
    the first losses agree within 1e-5 (ratio 0: teacher forcing; 1: every input predicted)."""
    pytest.importorskip("torch")
    from test_export_torch import engine_losses, torch_losses

    g = caption_graph(True)
    g.set_meta("training", {**g.training, "scheduled_sampling": ratio})
    ref = engine_losses(g, 3)
    np.testing.assert_allclose([e["loss"] for e in torch_losses(g, 3, tmp_path)], ref, rtol=1e-5)
    forced = engine_losses(caption_graph(True), 3)
    if ratio == 0.0:
        assert ref == forced
    else:  # the model's own inputs change the second step's loss
        assert abs(ref[1] - forced[1]) > 1e-6


def test_under_torchrun_the_masked_loss_is_the_mean_over_both_processes_targets(tmp_path):
    """Two processes, one SGD step: the weights equal one process's step on the two halves'
    batches together, the loss a mean over all their counted targets (the halves count
    different numbers of padded targets, so a plain average of the two means would differ)."""
    torch = pytest.importorskip("torch")
    import os
    import subprocess
    import sys

    from export_torch_support import exported
    from test_export_torch import free_port

    g = caption_graph(True)
    sgd = {"name": "sgd", "lr": 0.5}
    g.set_meta("training", {**g.training, "optimizer": sgd, "batch_size": 6})
    script = tmp_path / "ddp.py"
    script.write_text(export_code(g, "pytorch"), encoding="utf-8")
    env = dict(os.environ, BLOCKPROP_SAVE_FINAL=str(tmp_path / "final"), OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += [f"--master_port={free_port()}", str(script), "--steps", "1"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    got = np.load(tmp_path / "final.rank0.npz")
    # the same step in this process: each rank's first batch from its DistributedSampler
    mod = exported(g, tmp_path, name="one")
    X, y = mod.load_data()
    (Xtr, ytr), _, _ = mod.split(X, y)
    Xtr, ytr = torch.from_numpy(np.ascontiguousarray(Xtr)), torch.from_numpy(mod.targets(ytr))
    idx = []
    for rank in (0, 1):
        sampler = torch.utils.data.DistributedSampler(
            torch.utils.data.TensorDataset(Xtr), num_replicas=2, rank=rank, seed=mod.SEED
        )
        sampler.set_epoch(0)
        idx.append(list(sampler)[:6])
    counts = [int((ytr[i] != 0).sum()) for i in idx]
    assert counts[0] != counts[1]  # the halves weigh differently

    def one_step(halves):
        net = mod.build_model()
        loss = sum(mod.loss_fn(net(Xtr[h]), ytr[h]) for h in halves) / len(halves)
        loss.backward()
        torch.optim.SGD(net.parameters(), lr=0.5).step()
        return mod.engine_state(net)

    want = one_step([torch.tensor(idx[0] + idx[1])])
    assert sorted(want) == sorted(got.files)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-6, rtol=1e-5, err_msg=k)
    # what plain DDP gives (the average of the two halves' means) is measurably not that
    plain = one_step([torch.tensor(i) for i in idx])
    assert max(float(np.abs(plain[k] - want[k]).max()) for k in want) > 1e-4
