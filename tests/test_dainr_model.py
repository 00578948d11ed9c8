"""DA-INR's parts put together: shapes through the model, features, initial state."""

import pytest
import torch

from dainr.errors import InputError
from dainr.methods.dainr import DainrConfig
from dainr.methods.dainr.features import (
    FeatureExtractor,
    extract_features,
    make_extractor,
    normalise_input,
)
from dainr.methods.dainr.hashgrid import HashGrid
from dainr.methods.dainr.model import DainrModel, feature_frames, neighbour_frames, pixel_centres
from dainr.methods.dainr.networks import MLP
from dainr.resample import cubic_upsample, fourier_upsample


def _model(features="frame", canonical_input="paper", F=5, ny=12, nx=10, C=8):
    torch.manual_seed(0)
    feats = None if features == "off" else torch.randn(F, C, ny, nx)
    grid = HashGrid(n_levels=4, log2_size=10, base_resolution=4)
    cfg = DainrConfig(
        features=features,
        canonical_input=canonical_input,
        deform_width=16,
        canon_width=16,
        hash_backend="torch",
    )
    return DainrModel((ny, nx), F, feats, cfg, hash_grid=grid)


def test_pixel_centres():
    c = pixel_centres(2, 4)
    # x along columns, y along rows, centres of a 2 x 4 grid on [-1, 1]
    assert c.shape == (8, 2)
    torch.testing.assert_close(c[:4, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(c[::4, 1], torch.tensor([-0.5, 0.5]))


def test_neighbours_of_times():
    a, b, w = neighbour_frames(torch.tensor([0.0, 2.0, 2.25, 3.9, 4.0]), 5)
    assert a.tolist() == [0, 2, 2, 3, 4] and b.tolist() == [0, 2, 3, 4, 4]
    torch.testing.assert_close(w, torch.tensor([0.0, 0.0, 0.25, 0.9, 0.0]))
    # released code: on a frame, t-1 and t+1 (the one existing neighbour twice at the ends)
    lo, hi = feature_frames(torch.tensor([0.0, 2.0, 4.0, 2.5]), 5)
    assert lo.tolist() == [1, 1, 3, 2] and hi.tolist() == [1, 3, 3, 3]


@pytest.mark.parametrize("features", ["frame", "neighbours", "off"])
@pytest.mark.parametrize("canonical_input", ["paper", "released", "time"])
def test_shapes_through_the_model(features, canonical_input):
    m = _model(features, canonical_input)
    x = m.frames(torch.tensor([0, 3]))
    assert x.shape == (2, 12, 10) and x.dtype == torch.complex64
    hr = m.render(torch.tensor([1.5]), upscale=2.0)
    assert hr.shape == (1, 24, 20)
    frac = m.render(torch.tensor([0.5, 2.0]), upscale=1.5, coords="continuous")
    assert frac.shape == (2, 18, 15)
    hash_w = 4 * 2
    feat_w = {"frame": 8, "neighbours": 16, "off": 0}[features]
    extra = {"paper": 0, "released": 42 + 13, "time": 13}[canonical_input]
    assert m.canon.in_dim == hash_w + feat_w + extra
    assert m.deform.in_dim == 42 + 13


def test_starts_near_zero_deformation():
    m = _model()
    d = m.deformation(torch.arange(5.0))
    assert d.shape == (5, 120, 2)
    assert d.abs().max() < 1e-2 * 2 / 12  # far below a hundredth of a pixel


def test_nearest_upscale_repeats_deformation_and_renders_integer_times_exactly():
    m = _model(features="off")
    lr = m.render(torch.tensor([2.0]))
    hr = m.render(torch.tensor([2.0]), upscale=2.0)
    # without features, nearest-neighbour coordinates make each 2x2 block one value
    torch.testing.assert_close(hr[:, ::2, ::2], lr)
    torch.testing.assert_close(hr[:, 1::2, 1::2], lr)
    torch.testing.assert_close(m.frames(torch.tensor([2])), lr)


@pytest.mark.parametrize("beyond", ["continuous", "cubic"])
def test_band_renders_keep_the_fitted_band_and_take_the_rest_beyond(beyond):
    """r = 2 ``band+…``: inside the acquisition grid's band the spectrum is the r = 1
    frames' (zero-padded), outside it the ``continuous`` render's / bicubic's."""
    m = _model()
    t = torch.tensor([1.0, 2.5])
    lr = m.render(t)
    with torch.no_grad():
        banded = m.render(t, upscale=2.0, coords=f"band+{beyond}")
        fourier = m.render(t, upscale=2.0, coords="fourier")
        if beyond == "continuous":
            other = m.render(t, upscale=2.0, coords="continuous")
        else:
            other = cubic_upsample(lr, 2 * lr.shape[-2], 2 * lr.shape[-1])

    def spec(x):
        return torch.fft.fftshift(torch.fft.fft2(x.to(torch.complex128)), dim=(-2, -1))

    ny, nx = lr.shape[-2:]
    band = torch.zeros(2 * ny, 2 * nx, dtype=torch.bool)
    band[ny // 2 : ny // 2 + ny + 1, nx // 2 : nx // 2 + nx + 1] = True  # split Nyquist incl.
    sb, so, sf = spec(banded), spec(other), spec(fourier)
    torch.testing.assert_close(sb[:, band], sf[:, band], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(sb[:, ~band], so[:, ~band], atol=1e-3, rtol=1e-4)
    assert (so[:, ~band]).abs().max() > 1e-2  # there is something beyond the band to take
    assert (so[:, band] - sf[:, band]).abs().max() > 1e-2  # the two sources differ inside
    # the band is the r = 1 frames' own, pixel areas aligned
    torch.testing.assert_close(fourier, fourier_upsample(lr, 2 * ny, 2 * nx))


def test_split_first_layer_equals_concatenation():
    torch.manual_seed(0)
    mlp = MLP(7, 8, 3, 2)
    a, b = torch.randn(4, 5, 3), torch.randn(4, 1, 4)
    whole = mlp(torch.cat((a, b.expand(4, 5, 4)), dim=-1))
    torch.testing.assert_close(mlp([a, b]), whole)


def test_feature_extractor_seeded_and_independent_of_global_rng():
    g = torch.randn(3, 16, 16, dtype=torch.complex64)
    torch.manual_seed(123)
    f1 = extract_features(make_extractor(8, seed=5), g)
    torch.manual_seed(999)
    f2 = extract_features(make_extractor(8, seed=5), g)
    f3 = extract_features(make_extractor(8, seed=6), g)
    assert f1.shape == (3, 8, 16, 16)
    assert torch.equal(f1, f2) and not torch.equal(f1, f3)
    x = normalise_input(g)
    assert x.shape == (3, 3, 16, 16) and x.min() == -1 and x.max() == 1


def test_pretrained_weights_load_and_bad_files_are_named(tmp_path):
    src = FeatureExtractor(8)
    state = {"module." + k: v for k, v in src.state_dict().items()}
    state["tail.0.weight"] = torch.zeros(1)  # the rest of MDSR is ignored
    p = tmp_path / "mdsr.pt"
    torch.save({"state_dict": state}, p)
    net = make_extractor(8, seed=0, weights=p)
    for k, v in src.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)
    assert not any(q.requires_grad for q in net.parameters())
    with pytest.raises(InputError, match="no such"):
        make_extractor(8, weights=tmp_path / "missing.pt")
    with pytest.raises(InputError, match="expected shape"):
        make_extractor(16, weights=p)
    bad = tmp_path / "bad.pt"
    bad.write_text("not torch")
    with pytest.raises(InputError, match="bad.pt"):
        make_extractor(8, weights=bad)
