"""engine.augment: each transform does what it says, seeded; the Trainer augments training
batches only; the PyTorch script trains on the same augmented first batches."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.augment import AUGMENT_OPTIONS, affine_batch, augment_batch, check_augment
from engine.errors import ConfigError
from engine.training_spec import check_training

ROOT = Path(__file__).resolve().parent.parent


def images(n=16, c=1, h=8, w=8, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32) + 0.5


def test_settings_are_checked_and_named():
    assert check_augment(None) == {k: o.default for k, o in AUGMENT_OPTIONS.items()}
    assert check_augment({"hflip": True})["hflip"] is True
    with pytest.raises(ConfigError) as e:
        check_augment({"flip": True})
    assert "'flip'" in str(e.value) and "hflip" in str(e.value)
    with pytest.raises(ConfigError) as e:
        check_training({"augment": {"rotate": -5}}, need_dataset=False)
    assert "augment" in str(e.value) and "rotate" in str(e.value)
    with pytest.raises(ConfigError):
        check_training({"augment": [1]}, need_dataset=False)
    assert "augment" not in check_training(
        {}, need_dataset=False
    )  # graphs without it are unchanged


def test_same_seed_same_batch_and_off_is_identity():
    x = images()
    cfg = dict(crop_padding=2, hflip=True, rotate=15.0, shift=0.1, scale=0.1, brightness=0.1,
               contrast=0.2, cutout=3, noise=0.05)  # fmt: skip
    a = augment_batch(x, np.random.default_rng(1), **cfg)
    b = augment_batch(x, np.random.default_rng(1), **cfg)
    c = augment_batch(x, np.random.default_rng(2), **cfg)
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(augment_batch(x, np.random.default_rng(1)), x)
    assert not np.shares_memory(augment_batch(x, np.random.default_rng(1)), x)


def test_hflip_mirrors_about_half():
    x = images(n=200)
    out = augment_batch(x, np.random.default_rng(0), hflip=True)
    same = np.all(out == x, axis=(1, 2, 3))
    mirrored = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored) and 70 < mirrored.sum() < 130


def test_crop_with_padding_is_a_shift_with_zero_fill():
    p = 2
    x = images(n=30, c=3, h=6, w=7)
    out = augment_batch(x, np.random.default_rng(0), crop_padding=p)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    seen = set()
    for i in range(len(x)):
        hits = [
            (dy, dx)
            for dy in range(2 * p + 1)
            for dx in range(2 * p + 1)
            if np.array_equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 7])
        ]
        assert hits, i
        seen.add(hits[0])
    assert len(seen) > 5  # the offsets vary


def test_affine_identity_and_quarter_turn():
    x = images(n=3, c=2, h=5, w=5)
    one = np.ones(3)
    np.testing.assert_allclose(affine_batch(x, np.zeros(3), one, np.zeros((3, 2))), x, atol=1e-6)
    turned = affine_batch(x, np.full(3, np.pi / 2), one, np.zeros((3, 2)))
    np.testing.assert_allclose(turned, np.rot90(x, k=1, axes=(2, 3)), atol=1e-5)
    moved = affine_batch(x, np.zeros(3), one, np.tile([1.0, 0.0], (3, 1)))  # one row down
    np.testing.assert_allclose(moved[:, :, 1:], x[:, :, :-1], atol=1e-6)
    assert np.all(moved[:, :, 0] == 0)
    zoomed = affine_batch(x, np.zeros(3), np.full(3, 2.0), np.zeros((3, 2)))
    np.testing.assert_allclose(zoomed[:, :, 2, 2], x[:, :, 2, 2], atol=1e-6)  # the centre stays


def test_brightness_contrast_noise_cutout():
    x = images(n=50, c=1, h=12, w=12)
    rng = np.random.default_rng
    b = augment_batch(x, rng(0), brightness=0.3) - x
    per = b.reshape(50, -1)
    assert np.allclose(per, per[:, :1], atol=1e-6) and np.abs(per).max() <= 0.3 + 1e-6
    c = augment_batch(x, rng(0), contrast=0.5)
    np.testing.assert_allclose(c.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5)
    ratio = c.std(axis=(1, 2, 3)) / x.std(axis=(1, 2, 3))
    assert np.all((ratio > 0.5 - 1e-4) & (ratio < 1.5 + 1e-4)) and ratio.std() > 0.05
    n = augment_batch(x, rng(0), noise=0.1) - x
    assert abs(n.std() - 0.1) < 0.01 and abs(n.mean()) < 0.01
    cut = augment_batch(x, rng(0), cutout=4)
    zeros = (cut == 0).sum(axis=(1, 2, 3))  # x > 0.5 everywhere: only the hole is zero
    assert zeros.max() == 16 and zeros.min() >= 4  # 4x4 inside, at least 2x2 at a corner
    assert np.all((cut == x) | (cut == 0))


def graph_with(training: dict) -> engine.Graph:
    g = json.loads((ROOT / "tests" / "golden" / "graphs" / "lenet5.json").read_text())
    g["training"] = {**g["training"], **training}
    return engine.Graph.from_dict(g)


def first_training_input(trainer) -> np.ndarray:
    seen = []
    forward = trainer.model.forward

    def spy(x, training=False):
        if training and not seen:
            seen.append(np.array(x, copy=True))
        return forward(x, training=training)

    trainer.model.forward = spy
    for ev in trainer.run():
        if ev["event"] == "step":
            trainer.stop()
    return seen[0]


AUG = {"crop_padding": 2, "hflip": True, "rotate": 10.0, "noise": 0.05, "cutout": 4}


def test_trainer_augments_training_batches_only():
    g = graph_with({"augment": AUG, "batch_size": 16, "epochs": 1})
    t = engine.Trainer.from_graph(g, processes=2)
    assert t.processes == 1 and "augmentation" in t.processes_reason
    X, _ = t.train_data
    plain = engine.Trainer.from_graph(graph_with({"batch_size": 16, "epochs": 1}))
    assert t.evaluate(*t.val_data) == plain.evaluate(*plain.val_data)  # validation untouched
    got = first_training_input(t)
    order = np.random.default_rng([t.spec["seed"], 1]).permutation(len(X))
    want = augment_batch(
        X[order[:16]], np.random.default_rng([t.spec["seed"], 2]), **t.spec["augment"]
    )
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, X[order[:16]])


def test_augment_needs_images_and_real_values():
    g = json.loads((ROOT / "presets" / "plain_mlp.json").read_text())
    g["training"]["augment"] = {"hflip": True}
    with pytest.raises(ConfigError) as e:
        engine.Trainer.from_graph(engine.Graph.from_dict(g))
    assert "hflip" in str(e.value) and "(C, H, W)" in str(e.value)
    g["training"]["augment"] = {"noise": 0.1}  # noise fits any real-valued sample
    assert engine.Trainer.from_graph(engine.Graph.from_dict(g)).spec["augment"]["noise"] == 0.1


def test_pytorch_script_trains_on_the_same_augmented_first_batches(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from engine.export import export_code

    g = graph_with({"augment": AUG, "batch_size": 16, "epochs": 1})
    path = tmp_path / "aug_script.py"
    path.write_text(export_code(g, "pytorch"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("aug_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seen = []
    build = mod.build_model

    def spy_build():
        m = build()
        m.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].numpy().copy()) if _m.training else None
        )
        return m

    mod.build_model = spy_build
    mod.train(steps=2)
    t = engine.Trainer.from_graph(g)
    ours = []
    forward = t.model.forward

    def spy(x, training=False):
        if training:
            ours.append(np.array(x, copy=True))
        return forward(x, training=training)

    t.model.forward = spy
    for ev in t.run():
        if ev["event"] == "step" and ev["step"] == 2:
            t.stop()
    assert len(seen) >= 2 and len(ours) >= 2
    for a, b in zip(seen[:2], ours[:2], strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- GaussianNoise


def test_gaussian_noise_block_trains_noisy_and_infers_clean():
    from engine.layers import GaussianNoise

    x = np.random.default_rng(0).random((400, 3, 5), dtype=np.float32)
    layer = GaussianNoise(name="gn", std=0.5)
    layer.build((3, 5), np.random.default_rng(7))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    out = layer.forward(x, training=True)
    noise = out - x
    assert out.dtype == np.float32 and abs(noise.std() - 0.5) < 0.02 and abs(noise.mean()) < 0.02
    dout = np.random.default_rng(1).random(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dout), dout)  # d(x + z)/dx = 1
    again = GaussianNoise(name="gn", std=0.5)
    again.build((3, 5), np.random.default_rng(7))
    np.testing.assert_array_equal(again.forward(x, training=True), out)  # same seed, same noise
    assert GaussianNoise.summary({"std": 0.5}) == "std 0.5"
    with pytest.raises(ConfigError):
        GaussianNoise(name="gn", std=-1.0)


def test_gaussian_noise_gradient_through_a_model_is_the_clean_one():
    """With the noise drawn, the loss is a function of x + z: the numerical gradient of the
    noisy model (noise fixed) equals the backward pass."""
    from engine.layers import Dense, GaussianNoise

    rng = np.random.default_rng(0)
    x = rng.random((4, 6))
    gn, d = GaussianNoise(name="gn", std=0.3), Dense(name="d", units=2)
    gn.build((6,), np.random.default_rng(3))
    d.build((6,), np.random.default_rng(4))
    d.params = {k: v.astype(np.float64) for k, v in d.params.items()}
    noisy = gn.forward(x, training=True)
    z = noisy - x
    out = d.forward(noisy, training=True)
    dx = gn.backward(d.backward(np.ones_like(out)))
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (d.forward(xp + z).sum() - d.forward(xm + z).sum()) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


def test_denoising_autoencoder_uses_the_gaussian_noise_block():
    g = engine.load_graph(ROOT / "presets" / "denoising_autoencoder.json")
    types = {g.type_of(n) for n in g.nodes()}
    assert "GaussianNoise" in types and "Dropout" not in types


def test_numpy_export_trains_with_the_same_augmentation():
    from engine.export import export_code

    g = graph_with({"augment": {"hflip": True, "noise": 0.1}, "batch_size": 16, "epochs": 1})
    ns: dict = {"__name__": "numpy_script"}
    exec(compile(export_code(g, "numpy"), "numpy_script", "exec"), ns)
    t = ns["make_trainer"]()
    assert t.spec["augment"] == engine.Trainer.from_graph(g).spec["augment"]
    np.testing.assert_array_equal(
        first_training_input(t), first_training_input(engine.Trainer.from_graph(g))
    )


def test_engine_script_trains_on_the_same_augmented_first_batch(tmp_path):
    """The engine export trains through engine.Trainer with the graph's settings, augment
    included: with the same seed, its first training batch is the app's, augmented."""
    from engine.export import export_code

    g = graph_with({"augment": AUG, "batch_size": 16, "epochs": 1})
    path = tmp_path / "aug_engine_script.py"
    path.write_text(export_code(g, "numpy"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("aug_engine_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.TRAINING["augment"]["rotate"] == AUG["rotate"]
    theirs = first_training_input(mod.make_trainer())
    ours = first_training_input(engine.Trainer.from_graph(g))
    np.testing.assert_array_equal(theirs, ours)
    plain = first_training_input(engine.Trainer.from_graph(graph_with({"batch_size": 16})))
    assert not np.array_equal(theirs, plain)  # the augmentation did change the batch


# ---------------------------------------------------------------------------- token ids (EDA)


def test_token_swap_and_delete_keep_the_tokens_and_their_dtype():
    from engine.augment import augment_tokens

    x = np.arange(1, 1 + 50 * 12).reshape(50, 12)
    swapped = augment_tokens(x, np.random.default_rng(0), token_swap=2)
    assert swapped.dtype == x.dtype
    np.testing.assert_array_equal(np.sort(swapped, axis=1), x)  # the same tokens, moved
    moved = (swapped != x).sum(axis=1)
    assert moved.max() <= 4 and (moved > 0).mean() > 0.8
    dropped = augment_tokens(x, np.random.default_rng(0), token_delete=0.5)
    for row, orig in zip(dropped, x, strict=True):
        kept = row[row != 0]
        assert len(kept) >= 1 and np.all(np.isin(kept, orig))
        assert np.all(np.diff(np.searchsorted(orig, kept)) > 0)  # the order stays
        assert np.all(row[len(kept) :] == 0)  # padding after the kept tokens
    assert 0.35 < (dropped == 0).mean() < 0.65
    one = augment_tokens(x, np.random.default_rng(0), token_delete=0.9)
    assert np.all((one != 0).sum(axis=1) >= 1)
    again = augment_batch(x, np.random.default_rng(0), token_swap=2, token_delete=0.3)
    np.testing.assert_array_equal(
        again, augment_batch(x, np.random.default_rng(0), token_swap=2, token_delete=0.3)
    )


def reviews_graph(augment: dict) -> engine.Graph:
    g = json.loads((ROOT / "presets" / "text_cnn_cam.json").read_text())
    g["training"] = {**g["training"], "augment": augment, "batch_size": 16, "epochs": 1}
    return engine.Graph.from_dict(g)


def test_token_settings_fit_token_ids_of_a_classifier_only():
    t = engine.Trainer.from_graph(reviews_graph({"token_swap": 1, "token_delete": 0.1}))
    got = first_training_input(t)
    assert got.dtype.kind in "iu"
    with pytest.raises(ConfigError) as e:  # image settings on words
        engine.Trainer.from_graph(reviews_graph({"hflip": True}))
    assert "hflip" in str(e.value) and "token ids" in str(e.value)
    with pytest.raises(ConfigError) as e:  # words settings on images
        engine.Trainer.from_graph(graph_with({"augment": {"token_swap": 1}}))
    assert "token_swap" in str(e.value) and "real-valued" in str(e.value)
    g = json.loads((ROOT / "presets" / "char_lstm.json").read_text())
    g["training"]["augment"] = {"token_delete": 0.1}  # targets per step: refused
    with pytest.raises(ConfigError) as e:
        engine.Trainer.from_graph(engine.Graph.from_dict(g))
    assert "per step" in str(e.value)


def test_pytorch_script_trains_on_the_same_augmented_token_batches(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from engine.export import export_code

    g = reviews_graph({"token_swap": 2, "token_delete": 0.2})
    path = tmp_path / "tok_script.py"
    path.write_text(export_code(g, "pytorch"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("tok_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    seen = []
    build = mod.build_model

    def spy_build():
        m = build()
        m.register_forward_pre_hook(
            lambda _m, args: seen.append(args[0].numpy().copy()) if _m.training else None
        )
        return m

    mod.build_model = spy_build
    mod.train(steps=1)
    ours = first_training_input(engine.Trainer.from_graph(g))
    np.testing.assert_array_equal(seen[0], ours)
