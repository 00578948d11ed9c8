"""The CUDA path's decisions, checked on a CPU: which NUFFT runs, how the hash table is
stored and seeded, when bf16 is used, and what an out-of-memory fault leaves behind.

CUDA-only libraries are replaced by small fakes injected into ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib.machinery
import logging
import sys
import types
import weakref
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

import dainr.device
import dainr.loop
import dainr.render
from dainr.device import free_device_memory, is_out_of_memory, oom_guarded
from dainr.errors import FitError
from dainr.loop import RunOptions, Snapshot, run_fit
from dainr.methods.base import Method
from dainr.methods.dainr.hashgrid import HashGrid
from dainr.methods.dainr.method import native_bf16
from dainr.physics import backends
from dainr.prepare import prepare_series

from .conftest import TINY_DAINR

CUDA0 = torch.device("cuda", 0)


def _fake_module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


@pytest.fixture
def fresh_cufinufft_probe():
    backends.cufinufft_problem.cache_clear()
    yield
    backends.cufinufft_problem.cache_clear()


# ----------------------------------------------------------------------------- NUFFT


def test_auto_falls_back_to_torch_when_cufinufft_fails_to_load(
    monkeypatch, caplog, fresh_cufinufft_probe
):
    class Plan:  # what the CUDA-12 wheel does on a CUDA-13 machine: its library won't load
        def __init__(self, *a, **k):
            raise OSError("libcufft.so.11: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "cufinufft", _fake_module("cufinufft", Plan=Plan))
    with caplog.at_level(logging.WARNING, logger="dainr.physics.backends"):
        names = backends.available_backends(CUDA0)
    assert names[0] == "torch" and "cufinufft" not in names
    assert "cufinufft does not work on cuda:0 (OSError: libcufft.so.11" in caplog.text
    with pytest.raises(ValueError, match="cufinufft backend does not work here .*libcufft"):
        backends.make_backend("cufinufft", (8, 8), CUDA0)


def test_cufinufft_not_installed_is_silent_and_torch_is_chosen(
    monkeypatch, caplog, fresh_cufinufft_probe
):
    monkeypatch.setitem(sys.modules, "cufinufft", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="dainr.physics.backends"):
        assert backends.available_backends(CUDA0)[0] == "torch"
    assert caplog.text == ""
    assert backends.cufinufft_problem(0) == "cufinufft is not installed"


def test_cufinufft_plans_get_the_device_and_current_stream_and_are_cached(monkeypatch):
    made = []

    class Plan:
        def __init__(self, kind, shape, **kw):
            made.append((kind, shape, kw))

    monkeypatch.setitem(sys.modules, "cufinufft", _fake_module("cufinufft", Plan=Plan))
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    b = backends.CufinufftBackend((16, 12), torch.device("cuda", 1))
    stream = [111]
    monkeypatch.setattr(backends.CufinufftBackend, "_stream", lambda self: stream[0])
    p2 = b._plan(4, torch.complex64, 2)
    assert b._plan(4, torch.complex64, 2) is p2 and len(made) == 2  # one pair, cached
    assert [m[0] for m in made] == [2, 1] and made[0][1] == (16, 12)
    kw = made[0][2]
    assert kw["gpu_device_id"] == 1 and kw["gpu_stream"] == 111 and kw["n_trans"] == 4
    stream[0] = 222  # another current stream: its own plans
    assert b._plan(4, torch.complex64, 1) is not None and len(made) == 4
    assert made[-1][2]["gpu_stream"] == 222


def test_torch_backend_is_listed_on_every_device_and_matches_the_direct_sum():
    from dainr.physics import RadialOperator, direct_forward, golden_angle_trajectory

    assert "torch" in backends.available_backends(torch.device("cpu"))
    rng = np.random.default_rng(3)
    img = (rng.standard_normal((20, 17)) + 1j * rng.standard_normal((20, 17))).astype(np.complex64)
    traj = golden_angle_trajectory(7, 34).reshape(1, -1, 2)
    op = RadialOperator(traj, (20, 17), backend="torch")
    y = op.forward(torch.from_numpy(img)[None])[0].numpy()
    ref = direct_forward(img, traj[0])
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-4


# ------------------------------------------------------------------------- hash grid


@pytest.fixture
def fake_tcnn(monkeypatch):
    """A CPU stand-in for tinycudann.Encoding: its own flat ``params`` initialised with
    its own fixed seed (as tiny-cuda-nn does), read at every forward."""

    class Encoding(nn.Module):
        def __init__(self, n_input_dims, encoding_config, seed=1337, dtype=None):
            super().__init__()
            c = encoding_config
            with torch.random.fork_rng():  # the real one draws nothing from torch's RNG
                layout = HashGrid(
                    c["n_levels"],
                    c["n_features_per_level"],
                    c["log2_hashmap_size"],
                    c["base_resolution"],
                    c["per_level_scale"],
                )
            object.__setattr__(self, "layout", layout)  # not a submodule
            self.n_features = c["n_features_per_level"]
            gen = torch.Generator().manual_seed(seed)
            n = layout.n_rows * self.n_features
            self.params = nn.Parameter((torch.rand(n, generator=gen) * 2 - 1) * 1e-4)

        def forward(self, u):  # u in the unit square, like tiny-cuda-nn
            rows, w = self.layout.corners(u * 2 - 1)
            vals = nn.functional.embedding(rows.long(), self.params.view(-1, self.n_features))
            out = (vals * w[..., None]).sum(0)
            return out.permute(1, 0, 2).reshape(u.shape[0], -1)

    monkeypatch.setitem(sys.modules, "tinycudann", _fake_module("tinycudann", Encoding=Encoding))
    return Encoding


GRID = dict(n_levels=4, n_features=2, log2_size=8, base_resolution=4, per_level_scale=1.7)


def test_both_backends_hold_one_table_in_one_layout(fake_tcnn):
    torch.manual_seed(0)
    cpu = HashGrid(**GRID)
    gpu = HashGrid(**GRID, backend="tcnn")
    assert list(cpu.state_dict()) == list(gpu.state_dict()) == ["table"]
    assert [n for n, _ in gpu.named_parameters()] == ["table"]  # no second copy in tcnn
    with torch.no_grad():
        cpu.table.normal_()
    gpu.load_state_dict(cpu.state_dict())  # a CPU checkpoint resumes on the tcnn backend
    xy = torch.rand(64, 2) * 2 - 1
    torch.testing.assert_close(gpu(xy), cpu(xy))
    back = HashGrid(**GRID)
    back.load_state_dict(gpu.state_dict())  # and back
    torch.testing.assert_close(back(xy), cpu(xy))


def test_optimiser_state_moves_between_backends(fake_tcnn):
    """One AdamW step on the CPU grid, its checkpoint resumed on tcnn: the next step
    equals the CPU grid's own next step (the table's gradient flows through tcnn)."""
    torch.manual_seed(0)
    xy = torch.rand(200, 2) * 2 - 1
    target = torch.randn(200, GRID["n_levels"] * 2)

    def step(grid, opt):
        opt.zero_grad(set_to_none=False)
        (grid(xy) - target).square().mean().backward()
        opt.step()

    cpu = HashGrid(**GRID)
    opt = torch.optim.AdamW(cpu.parameters(), lr=1e-2)
    step(cpu, opt)
    state = copy.deepcopy({"grid": cpu.state_dict(), "opt": opt.state_dict()})  # a checkpoint
    gpu = HashGrid(**GRID, backend="tcnn")
    gpu.load_state_dict(state["grid"])
    opt2 = torch.optim.AdamW(gpu.parameters(), lr=1e-2)
    opt2.load_state_dict(state["opt"])
    step(cpu, opt)
    step(gpu, opt2)
    assert gpu.table.grad is not None and gpu.table.grad.abs().sum() > 0
    torch.testing.assert_close(gpu.table, cpu.table, rtol=1e-5, atol=1e-7)


def test_run_seed_sets_the_initial_table_on_the_tcnn_backend_too(fake_tcnn):
    tables = {}
    for seed in (1, 2):
        for backend in ("torch", "tcnn"):
            torch.manual_seed(seed)
            tables[seed, backend] = HashGrid(**GRID, backend=backend).table_values().clone()
    torch.testing.assert_close(tables[1, "tcnn"], tables[1, "torch"], rtol=0, atol=0)
    assert not torch.equal(tables[1, "tcnn"], tables[2, "tcnn"])  # --seed changes it
    own = fake_tcnn(
        2,
        {
            "n_levels": 4,
            "n_features_per_level": 2,
            "log2_hashmap_size": 8,
            "base_resolution": 4,
            "per_level_scale": 1.7,
        },
    ).params
    assert not torch.equal(tables[1, "tcnn"].reshape(-1), own.detach())  # not tcnn's 1337
    assert tables[1, "tcnn"].abs().max() <= 1e-4


def test_tcnn_backend_without_cuda_or_tinycudann_is_a_clean_error(monkeypatch):
    from dainr.methods.dainr.hashgrid import resolve_backend

    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_backend("tcnn", torch.device("cpu"))
    monkeypatch.setitem(sys.modules, "tinycudann", None)
    assert resolve_backend("auto", CUDA0) == "torch"
    with pytest.raises(ValueError, match="tinycudann does not import"):
        resolve_backend("tcnn", CUDA0)


# ------------------------------------------------------------------------------ bf16


@pytest.mark.parametrize(
    "capability,native", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)]
)
def test_bf16_auto_needs_compute_capability_8(monkeypatch, capability, native):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert native_bf16(CUDA0) is native


# ------------------------------------------------------------------------------- OOM


@pytest.mark.parametrize(
    "exc,oom",
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("Could not allocate memory: CUDA error: out of memory"), True),  # tcnn
        (RuntimeError("cufinufft: failed to allocate the fine grid on the GPU"), True),
        (RuntimeError("CUDA error: cudaErrorMemoryAllocation"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_classification(exc, oom):
    assert is_out_of_memory(exc) is oom


def test_free_device_memory_empties_the_cuda_cache(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device", lambda d: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    free_device_memory("cpu")
    assert emptied == []
    free_device_memory("cuda:0")
    assert emptied == [True]


@dataclass(frozen=True)
class _Cfg:
    fail_at: int = 3


class _FailingMethod(Method):
    """Gradient steps on the data term; step ``fail_at`` (1-based) allocates a tensor
    and then raises ``error`` (as the allocator, tiny-cuda-nn or cufinufft would)."""

    name = "failing"

    def __init__(self, prep, error, fail_at=3, fail_in="step"):
        # ``error`` is a factory: an exception object kept here would keep its traceback
        super().__init__(prep, _Cfg(fail_at))
        self.x = prep.gridding.clone()
        self.error, self.fail_in = error, fail_in
        self.allocated: weakref.ref | None = None
        self.released = False
        self.steps_run = 0

    @property
    def total_steps(self):
        return 6

    def _fail(self):
        big = torch.zeros(1000, 1000)  # what the failed computation held
        self.allocated = weakref.ref(big)
        raise self.error()

    def step(self, step):
        self.steps_run += 1
        if self.fail_in == "step" and step + 1 == self.config.fail_at:
            self._fail()
        r = self.prep.op.forward(self.x) - self.prep.kspace
        self.x = self.x - 0.5 * self.prep.op.adjoint(r * self.prep.dcf[:, None])
        return float(r.abs().mean())

    def current_frames(self):
        if self.fail_in == "snapshot" and self.steps_run >= self.config.fail_at:
            self._fail()
        return self.x

    def release(self):
        self.released = True


@pytest.fixture
def freed(monkeypatch):
    """Records free_device_memory calls and whether the failed tensor was gone by then."""
    calls = []

    def record(device):
        gc.collect()
        m = record.method
        calls.append((str(device), m.allocated is not None and m.allocated() is None))

    monkeypatch.setattr(dainr.loop, "free_device_memory", record)
    monkeypatch.setattr(dainr.render, "free_device_memory", record)
    return record, calls


@pytest.mark.parametrize(
    "error",
    [
        lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        lambda: RuntimeError("CUDA error: out of memory (tiny-cuda-nn)"),
    ],
    ids=["torch", "extension"],
)
def test_oom_in_a_step_is_a_fit_error_with_the_last_snapshot(tiny_data, freed, error):
    record, calls = freed
    m = _FailingMethod(prepare_series(tiny_data), error, fail_at=4)
    record.method = m
    snaps = []
    with pytest.raises(FitError) as e:
        for msg in run_fit(m, RunOptions(snapshot_every=2)):
            if isinstance(msg, Snapshot):
                snaps.append(msg)
    text = str(e.value)
    assert text.startswith("cpu ran out of memory in step 4 (")
    assert type(error()).__name__ in text and "hash_log2_size" in text
    assert e.value.__cause__ is None and e.value.__context__ is None  # no traceback kept
    assert m.released and calls == [("cpu", True)]  # freed once, after the tensor was gone
    kept = e.value.partial
    assert kept.partial and kept.steps_done == 2
    np.testing.assert_array_equal(kept.frames, snaps[0].frames)


def test_oom_in_a_snapshot_is_caught_too(tiny_data, freed):
    record, calls = freed
    m = _FailingMethod(
        prepare_series(tiny_data),
        lambda: RuntimeError("CUDA error: out of memory"),
        fail_at=4,
        fail_in="snapshot",
    )
    record.method = m
    with pytest.raises(
        FitError, match="out of memory in the (snapshot|estimate) after step 4"
    ) as e:
        list(run_fit(m, RunOptions(snapshot_every=2)))
    assert e.value.partial.steps_done == 2 and calls == [("cpu", True)]


def test_oom_in_a_held_out_evaluation_is_caught_too(tiny_data, freed):
    """An evaluation between snapshots renders its frames itself: the same guard applies."""
    record, calls = freed
    m = _FailingMethod(
        prepare_series(tiny_data, holdout=0.05),
        lambda: RuntimeError("CUDA error: out of memory"),
        fail_at=4,
        fail_in="snapshot",
    )
    record.method = m
    with pytest.raises(FitError, match="out of memory in the held-out evaluation after step 4"):
        list(run_fit(m, holdout_every=2))
    assert calls == [("cpu", True)]


def test_other_runtime_errors_are_not_taken_for_oom(tiny_data, freed):
    record, calls = freed
    m = _FailingMethod(
        prepare_series(tiny_data), lambda: RuntimeError("shapes cannot be multiplied")
    )
    record.method = m
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        list(run_fit(m))
    assert calls == []


def test_oom_while_rendering_is_a_one_line_error(freed):
    record, calls = freed

    class Renders:
        name = "dainr"
        prep = SimpleNamespace(
            n_frames=3, device=torch.device("cpu"), scale=1.0, image_shape=(4, 4)
        )
        allocated = None

        def render_frames(self, times, upscale=1.0, coords="nearest"):
            big = torch.zeros(1000, 1000)
            self.allocated = weakref.ref(big)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")

    m = Renders()
    record.method = m
    with pytest.raises(
        FitError, match=r"out of memory rendering frames at 1.5x .*OutOfMemoryError"
    ):
        dainr.render.render(m, upscale=1.5)
    assert calls == [("cpu", True)]


def test_oom_guarded_returns_value_or_message():
    assert oom_guarded(lambda a: a + 1, 1) == (2, None)

    def boom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory.\nmore detail")

    assert oom_guarded(boom) == (None, "OutOfMemoryError: CUDA out of memory.")
    assert dainr.device.OOM_ADVICE.endswith("--device cpu")


# ------------------------------------------------------------------- on a real GPU


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["torch", "auto"])
def test_cuda_nufft_matches_the_direct_sum(name):
    from dainr.physics import RadialOperator, direct_forward, golden_angle_trajectory

    rng = np.random.default_rng(0)
    img = (rng.standard_normal((24, 20)) + 1j * rng.standard_normal((24, 20))).astype(np.complex64)
    maps = (rng.standard_normal((3, 24, 20)) + 1j * rng.standard_normal((3, 24, 20))).astype(
        np.complex64
    )
    traj = golden_angle_trajectory(10, 48).reshape(2, -1, 2)
    op = RadialOperator(traj, (24, 20), maps, device="cuda", backend=name)
    x = torch.from_numpy(img).cuda()[None].expand(2, -1, -1)
    y = op.forward(x).cpu().numpy()
    for f in range(2):
        ref = direct_forward(img, traj[f], maps)
        assert np.linalg.norm(y[f] - ref) / np.linalg.norm(ref) < 1e-3
    yy = torch.randn(2, 3, op.n_samples, dtype=torch.complex64, device="cuda")
    xx = torch.randn(2, 24, 20, dtype=torch.complex64, device="cuda")
    lhs = torch.vdot(op.forward(xx).flatten(), yy.flatten())
    rhs = torch.vdot(xx.flatten(), op.adjoint(yy).flatten())
    assert abs(lhs - rhs) / abs(lhs) < 1e-4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_resumes_a_cpu_checkpoint(tiny_data, tmp_path):
    """A DA-INR checkpoint written on the CPU (torch hash grid) resumes on CUDA, where
    ``auto`` may pick tiny-cuda-nn, and the fit goes on to its end."""
    from dainr.loop import Done, Progress, StopRequest
    from dainr.session import FitSpec, fit_stream

    ck = tmp_path / "ck.pt"
    over = dict(TINY_DAINR, steps=6)
    stop = StopRequest()
    for m in fit_stream(
        tiny_data, FitSpec(overrides=over, device="cpu"), RunOptions(checkpoint=ck), stop=stop
    ):
        if isinstance(m, Progress) and m.step == 3:
            stop.request()
    assert torch.load(ck, weights_only=False)["step"] == 3
    done = [
        m
        for m in fit_stream(
            tiny_data, FitSpec(overrides=over, device="cuda"), RunOptions(resume=ck)
        )
        if isinstance(m, Done)
    ]
    r = done[0].result
    assert r.steps_done == 6 and np.isfinite(r.frames).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_out_of_memory_is_a_fit_error_and_the_cache_is_returned(tiny_data):
    prep = prepare_series(tiny_data, device="cuda")

    class Greedy(_FailingMethod):
        def step(self, step):
            held = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB
            held += 1
            torch.empty(2**50, dtype=torch.uint8, device="cuda")  # 1 PiB: always fails
            return 0.0

    m = Greedy(prep, None)
    torch.cuda.empty_cache()
    reserved0 = torch.cuda.memory_reserved()
    with pytest.raises(FitError, match="cuda.* ran out of memory in step 1 .*OutOfMemoryError"):
        list(run_fit(m))
    # the step's 256 MiB were freed and the cache handed back: nothing more held than before
    assert torch.cuda.memory_reserved() <= reserved0
