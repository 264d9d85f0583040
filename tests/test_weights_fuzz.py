"""Property tests of weights files: a saved file damaged, or an archive made by hand with
absurd headers (2**40 values, pickles, odd dtypes, wrong names), either loads exactly or raises
a WeightsError, and a refused file leaves the model as it was. Run under a memory cap by
tests/test_fuzz_capped.py, so a header believed before it is checked fails the test."""

from __future__ import annotations

import io
import itertools
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_files import _npy_bytes
from test_data_files_fuzz import mutate

import engine
from engine.errors import WeightsError
from engine.weights import read_weights

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

GRAPH = {
    "format": "blockprop-graph",
    "version": 1,
    "name": "w",
    "nodes": [
        {"id": "in", "type": "Input", "config": {"shape": [1, 6, 6]}},
        {"id": "c", "type": "Conv2D", "config": {"filters": 2, "kernel_size": 3}},
        {"id": "bn", "type": "BatchNorm", "config": {}},
        {"id": "f", "type": "Flatten", "config": {}},
        {"id": "d", "type": "Dense", "config": {"units": 3}},
    ],
    "edges": [
        {"source": a, "target": b, "target_port": 0}
        for a, b in (("in", "c"), ("c", "bn"), ("bn", "f"), ("f", "d"))
    ],
}


@pytest.fixture(scope="module")
def model():
    return engine.build_model(engine.Graph.from_dict(GRAPH), seed=0)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    root, counter = tmp_path_factory.mktemp("wfuzz"), itertools.count()
    return lambda: root / f"{next(counter)}.npz"


def saved(model) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **model.state())
    return buf.getvalue()


DESCR = ["<f4", "<f8", ">f4", "<i8", "|u1", "|O", "<c8", "|b1", "<U2", "<f16", "<f2"]
HUGE = st.integers(0, 2**40)


@st.composite
def member(draw, shapes):
    """One .npy member: a name of the model's or another, a header that may lie, a payload
    of the right size or of random bytes."""
    name = draw(st.one_of(st.sampled_from(sorted(shapes)), st.text(max_size=6)))
    right = shapes.get(name, (2,))
    shape = draw(
        st.one_of(
            st.just(right),
            st.lists(st.one_of(st.integers(0, 4), HUGE, st.integers(-2, -1)), max_size=3).map(
                tuple
            ),
        )
    )
    descr = draw(st.sampled_from(DESCR))
    header = {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape}
    if draw(st.booleans()) and all(0 <= d <= 64 for d in shape):
        payload = bytes(int(np.prod(shape, dtype=np.int64)) * np.dtype(descr).itemsize)
    else:
        payload = draw(st.binary(max_size=64))
    version = draw(st.sampled_from([(1, 0), (1, 0), (2, 0), (3, 0)]))
    suffix = draw(st.sampled_from([".npy", ".npy", ".npy", ""]))
    return name + suffix, _npy_bytes(header, payload, version)


@FUZZ
@given(data=st.data())
def test_fuzz_weights_load_exactly_or_raise_weights_error(model, fresh, data):
    shapes = {k: v.shape for k, v in model.state().items()}
    if data.draw(st.booleans()):
        raw = mutate(data, saved(model))
    else:
        members = dict(data.draw(st.lists(member(shapes), min_size=0, max_size=7)))
        if data.draw(st.booleans()):  # the model's own arrays, one or more then replaced
            members = {**{f"{k}.npy": None for k in shapes}, **members}
        buf = io.BytesIO()
        method = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        with zipfile.ZipFile(buf, "w", method) as zf:
            for name, blob in members.items():
                if blob is None:
                    arr = model.state()[name.removesuffix(".npy")]
                    blob = _npy_bytes(
                        {"descr": arr.dtype.str, "fortran_order": False, "shape": arr.shape},
                        arr.tobytes(),
                    )
                zf.writestr(name, blob)
        raw = mutate(data, buf.getvalue())
    p = fresh()
    p.write_bytes(raw)
    before = model.state()
    try:
        engine.load_weights(model, p)
    except WeightsError as e:
        assert str(e).startswith(str(p) + ": ") and "\n" not in str(e)
        after = model.state()
        assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing changed
    else:
        arrays = read_weights(p)
        assert set(arrays) == set(shapes)
        after = model.state()
        assert all(np.array_equal(after[k], arrays[k].astype(after[k].dtype)) for k in after)
        model.set_state(before)
    try:
        arrays = read_weights(p)  # without a model: only the caps
    except WeightsError:
        return
    assert all(a.dtype.kind in "fiu" for a in arrays.values())
