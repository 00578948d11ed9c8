"""The operator against the contract's explicit sum, the adjoint test, gradients."""

import numpy as np
import pytest
import torch

from dainr.physics import RadialOperator, direct_forward, golden_angle_trajectory
from dainr.physics.backends import available_backends

BACKENDS = available_backends(torch.device("cpu"))
CUDA_BACKENDS = available_backends(torch.device("cuda")) if torch.cuda.is_available() else []


def _case(ny=12, nx=10, coils=3, frames=2, spokes=5, seed=0):
    rng = np.random.default_rng(seed)
    img = (
        rng.standard_normal((frames, ny, nx)) + 1j * rng.standard_normal((frames, ny, nx))
    ).astype(np.complex64)
    maps = (
        rng.standard_normal((coils, ny, nx)) + 1j * rng.standard_normal((coils, ny, nx))
    ).astype(np.complex64)
    traj = golden_angle_trajectory(frames * spokes, 2 * nx).reshape(frames, -1, 2)
    return img, maps, traj


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(12, 10), (9, 7)])
def test_forward_matches_contract_direct_sum(backend, shape):
    img, maps, traj = _case(*shape)
    op = RadialOperator(traj, shape, maps, backend=backend)
    y = op.forward(torch.from_numpy(img)).numpy()
    for f in range(2):
        ref = direct_forward(img[f], traj[f], maps)
        assert np.linalg.norm(y[f] - ref) / np.linalg.norm(ref) <= 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_test(backend):
    img, maps, traj = _case()
    op = RadialOperator(traj, (12, 10), maps, backend=backend)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 10, dtype=torch.complex64, generator=g)
    y = torch.randn(2, 3, op.n_samples, dtype=torch.complex64, generator=g)
    lhs = torch.vdot(op.forward(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y).flatten())
    assert abs(lhs - rhs) / abs(lhs) <= 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_selection_uses_each_frames_trajectory(backend):
    img, maps, traj = _case()
    op = RadialOperator(traj, (12, 10), maps, backend=backend)
    x = torch.from_numpy(img)
    full = op.forward(x)
    one = op.forward(x[1:2], frames=[1])
    torch.testing.assert_close(one[0], full[1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(op.forward(x[1:2], frames=[0])[0], full[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_matches_torchkbnufft(backend):
    img, maps, traj = _case()
    y = torch.from_numpy(direct_forward(img[0], traj[0], maps).astype(np.complex64))[None]
    grads = {}
    for b in {backend, "torchkbnufft"}:
        op = RadialOperator(traj[:1], (12, 10), maps, backend=b)
        x = torch.zeros(1, 12, 10, dtype=torch.complex64, requires_grad=True)
        loss = (op.forward(x) - y).abs().pow(2).sum()
        loss.backward()
        grads[b] = x.grad
        # the gradient of ||Ax - y||^2 at 0 is -2 A^H y (PyTorch's conjugate convention)
        torch.testing.assert_close(x.grad, -2 * op.adjoint(y), rtol=2e-3, atol=1e-3)
    g = grads["torchkbnufft"]
    assert (grads[backend] - g).norm() / g.norm() < 2e-3


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", CUDA_BACKENDS)
def test_cuda_backends_match_direct_sum(backend):
    img, maps, traj = _case()
    op = RadialOperator(traj, (12, 10), maps, backend=backend, device="cuda")
    y = op.forward(torch.from_numpy(img).cuda()).cpu().numpy()
    ref = direct_forward(img[0], traj[0], maps)
    assert np.linalg.norm(y[0] - ref) / np.linalg.norm(ref) <= 1e-3
    x = torch.randn(2, 12, 10, dtype=torch.complex64, device="cuda")
    yy = torch.randn(2, 3, op.n_samples, dtype=torch.complex64, device="cuda")
    lhs = torch.vdot(op.forward(x).flatten(), yy.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(yy).flatten())
    assert abs(lhs - rhs) / abs(lhs) <= 1e-4


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown NUFFT backend"):
        RadialOperator(_case()[2], (12, 10), backend="nope")
