"""engine.blas_threads: the policy for NumPy's BLAS threads (its decisions, not timings)."""

import numpy as np
import pytest

from engine import blas_threads
from engine.blas_threads import BIG_PRODUCT_MACS, choose_threads
from engine.layers import LSTM, Conv2D

BIG = 10 * BIG_PRODUCT_MACS


@pytest.mark.parametrize(
    ("cores", "others", "macs", "pinned", "want"),
    [
        (2, 0.0, BIG, False, 2),  # an idle 2-core desktop: both cores
        (2, 0.25, BIG, False, 2),  # a little background use still leaves a core
        (2, 0.45, BIG, False, 1),  # another job on half a core: one thread
        (2, 2.0, BIG, False, 1),  # a `yes` pair: one thread
        (2, 7.0, BIG, False, 1),  # more than the machine (rounding of the counters)
        (2, 0.0, BIG_PRODUCT_MACS - 1, False, 1),  # a small product never
        (2, 0.0, BIG, True, 1),  # the two-process split: one thread each
        (1, 0.0, BIG, False, 1),
        (8, 2.2, BIG, False, 6),  # 5.8 cores free: 6 threads
        (8, 2.4, BIG, False, 5),
        (8, 0.0, BIG, False, 8),
        (8, -0.3, BIG, False, 8),  # a negative estimate counts as none
    ],
)
def test_choose_threads(cores, others, macs, pinned, want):
    assert choose_threads(cores, others, macs, pinned) == want


def test_other_processes_cpu_is_the_machines_minus_this_processs(monkeypatch):
    clock, busy, own = [100.0], [50.0], [10.0]
    monkeypatch.setattr(blas_threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(blas_threads, "_busy_seconds", lambda: busy[0])
    monkeypatch.setattr(blas_threads, "_own_seconds", lambda: own[0])
    m = blas_threads._Machine()
    assert m.others_busy() == m.cores  # no window yet: counted busy (one thread)
    # 2 s later: the machine was busy 2.2 s, this process 2.0 of them (its own BLAS threads
    # spinning count as its own): the others used 0.1 of a core
    clock[0], busy[0], own[0] = 102.0, 52.2, 12.0
    assert m.others_busy() == pytest.approx(0.1)
    # looked at most once a second: a `yes` pair starting is seen at the next look
    clock[0], busy[0], own[0] = 102.5, 53.2, 12.1
    assert m.others_busy() == pytest.approx(0.1)
    clock[0], busy[0], own[0] = 103.0, 54.2, 12.2
    assert m.others_busy() == pytest.approx(1.8)


def test_others_since_a_mark_leaves_this_process_out(monkeypatch):
    # the benchmarks' quiet-machine test (conv_nets.py --idle): the same signal, over any span
    clock, busy, own = [100.0], [50.0], [10.0]
    monkeypatch.setattr(blas_threads.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(blas_threads, "_busy_seconds", lambda: busy[0])
    monkeypatch.setattr(blas_threads, "_own_seconds", lambda: own[0])
    mark = blas_threads.cpu_mark()
    clock[0], busy[0], own[0] = 100.5, 51.1, 10.9  # this process 0.9 s of the machine's 1.1
    assert blas_threads.others_since(mark) == pytest.approx(0.4)
    monkeypatch.setattr(blas_threads, "_busy_seconds", lambda: None)  # no /proc/stat
    assert blas_threads.others_since(blas_threads.cpu_mark()) is None


def test_without_proc_stat_the_load_average_minus_this_process_is_used(monkeypatch):
    monkeypatch.setattr(blas_threads, "_busy_seconds", lambda: None)
    monkeypatch.setattr(blas_threads.os, "getloadavg", lambda: (2.5, 1.0, 1.0))
    assert blas_threads._Machine().others_busy() == pytest.approx(1.5)


def test_pinning_counts_nested_calls(monkeypatch):
    monkeypatch.setattr(blas_threads._machine, "others_busy", lambda: 0.0)
    monkeypatch.setattr(blas_threads._machine, "cores", 2)
    assert blas_threads.threads_for(BIG) == 2
    blas_threads.pin_one_thread(True)
    blas_threads.pin_one_thread(True)
    blas_threads.pin_one_thread(False)
    try:
        assert blas_threads.threads_for(BIG) == 1
    finally:
        blas_threads.pin_one_thread(False)
    assert blas_threads.threads_for(BIG) == 2


@pytest.fixture
def lib():
    """threadpoolctl's controller of NumPy's BLAS, its thread setting given back after."""
    libs = blas_threads.numpy_blas()
    if not libs:
        pytest.skip("threadpoolctl does not see NumPy's BLAS here")
    before = libs[0].get_num_threads()
    yield libs[0]
    libs[0].set_num_threads(before)


def test_pinning_holds_every_numpy_product_to_one_thread_until_the_last_unpin(lib):
    """engine/parallel.py's split pins: products outside ``limited`` (reductions, optimizers)
    must not start BLAS threads on the other process's core either."""
    lib.set_num_threads(2)
    blas_threads.pin_one_thread(True)
    blas_threads.pin_one_thread(True)
    assert lib.get_num_threads() == 1
    blas_threads.pin_one_thread(False)
    assert lib.get_num_threads() == 1  # still pinned once
    blas_threads.pin_one_thread(False)
    assert lib.get_num_threads() == 2  # given back


def test_a_large_convolution_uses_the_free_cores_and_restores_the_setting(monkeypatch, lib):
    monkeypatch.setattr(blas_threads._machine, "cores", 2)
    seen = []
    real = np.matmul

    def spy(*args, **kwargs):
        seen.append(lib.get_num_threads())
        return real(*args, **kwargs)

    r = np.random.default_rng(0)
    big = Conv2D(filters=64, kernel_size=3, padding=1).build((64, 32, 32), r)
    x = r.standard_normal((1, 64, 32, 32)).astype(np.float32)
    lib.set_num_threads(1)
    monkeypatch.setattr(np, "matmul", spy)
    for others, want in ((0.0, 2), (1.5, 1)):
        monkeypatch.setattr(blas_threads._machine, "others_busy", lambda o=others: o)
        seen.clear()
        out = big.forward(x)
        big.backward(np.ones_like(out))
        assert seen and set(seen) == {want}, (others, seen)
        assert lib.get_num_threads() == 1  # given back


def test_a_recurrent_step_product_is_one_call_on_the_threads_its_size_earns(monkeypatch, lib):
    monkeypatch.setattr(blas_threads._machine, "cores", 2)
    monkeypatch.setattr(blas_threads._machine, "others_busy", lambda: 0.0)
    t, f, h = 6, 16, 128
    r = np.random.default_rng(0)
    lstm = LSTM(hidden_size=h).build((t, f), r)
    seen = []
    real = np.matmul
    step_out = [None]

    def spy(a, *args, **kwargs):
        out = kwargs.get("out", args[1] if len(args) > 1 else None)  # (the loop passes it 3rd)
        if np.shape(out) == step_out[0]:  # a step's (4H, N) pre-activations
            seen.append(lib.get_num_threads())
        return real(a, *args, **kwargs)

    lib.set_num_threads(2)
    monkeypatch.setattr(np, "matmul", spy)
    # (512, 145) @ (145, n): 2.4 M multiply-adds at batch 32 (one thread), 19 M at 256 (two)
    for n, want in ((32, 1), (256, 2)):
        seen.clear()
        step_out[0] = (4 * h, n)
        lstm.forward(r.standard_normal((n, t, f)).astype(np.float32))
        assert seen == [want] * t, (n, seen)
        assert lib.get_num_threads() == 2  # given back
