"""Band-limited upsampling: exact on band-limited images, pixel areas aligned."""

import numpy as np
import pytest
import torch

from dainr.resample import cubic_upsample, fourier_upsample, replace_band


def _band_limited(positions_y, positions_x, n):
    """A sum of complex exponentials below the coarse grid's Nyquist frequency, evaluated
    at coarse-pixel coordinates (pixel q at q)."""
    out = np.zeros((len(positions_y), len(positions_x)), complex)
    for ky, kx, a in ((0, 0, 1.0), (1, -2, 0.5 - 0.3j), (-3, 4, 0.25j), (5, 1, -0.2)):
        out += a * np.exp(2j * np.pi * (ky * positions_y[:, None] + kx * positions_x[None]) / n)
    return out


@pytest.mark.parametrize("n_out", [24, 20, 37])
def test_exact_on_band_limited_images_at_area_aligned_positions(n_out):
    n = 12
    q = np.arange(n, dtype=float)
    coarse = torch.from_numpy(_band_limited(q, q, n)).to(torch.complex128)
    fine = fourier_upsample(coarse[None], n_out, n_out)[0].numpy()
    pos = (np.arange(n_out) + 0.5) * n / n_out - 0.5  # fine pixel j in coarse units
    np.testing.assert_allclose(fine, _band_limited(pos, pos, n), atol=1e-10)


def test_real_image_stays_real_and_constant_stays_constant():
    n = 8
    checker = torch.tensor((-1.0) ** np.add.outer(np.arange(n), np.arange(n)))  # Nyquist
    up = fourier_upsample(checker.to(torch.complex128), 16, 16)
    assert up.imag.abs().max() < 1e-12  # the Nyquist bin is split between +-n/2
    flat = fourier_upsample(torch.full((2, n, n), 3 - 1j, dtype=torch.complex64), 16, 24)
    torch.testing.assert_close(flat, torch.full((2, 16, 24), 3 - 1j), atol=1e-5, rtol=0)


def test_refuses_to_shrink():
    with pytest.raises(ValueError, match="only enlarges"):
        fourier_upsample(torch.zeros(4, 4, dtype=torch.complex64), 3, 8)


def test_replace_band_takes_the_band_from_one_image_and_the_rest_from_the_other():
    gen = torch.Generator().manual_seed(0)
    fine = torch.randn(2, 16, 20, dtype=torch.complex128, generator=gen)
    coarse = torch.randn(2, 8, 10, dtype=torch.complex128, generator=gen)
    out = replace_band(fine, coarse)

    def spec(x):
        return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))

    f_out, f_fine, f_up = spec(out), spec(fine), spec(fourier_upsample(coarse, 16, 20))
    # the coarse grid's centred bins (with both halves of the split Nyquist): rows 4..12,
    # columns 5..15 of the fine spectrum come from the coarse image, the rest from the fine
    band = torch.zeros(16, 20, dtype=torch.bool)
    band[4:13, 5:16] = True
    torch.testing.assert_close(f_out[:, band], f_up[:, band])
    torch.testing.assert_close(f_out[:, ~band], f_fine[:, ~band])
    assert f_fine[:, band].abs().mean() > 1  # so the comparison above means something
    # an image whose band is already the coarse one's comes back unchanged
    same = fourier_upsample(coarse, 16, 20)
    torch.testing.assert_close(replace_band(same, coarse), same)


def test_cubic_upsample_matches_interpolate_on_real_and_imaginary_parts():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 6, 5, dtype=torch.complex64, generator=gen)
    up = cubic_upsample(x, 12, 9)
    assert up.shape == (3, 2, 12, 9)

    def interp(p):
        return torch.nn.functional.interpolate(
            p.reshape(6, 1, 6, 5), size=(12, 9), mode="bicubic", align_corners=False
        ).reshape(3, 2, 12, 9)

    torch.testing.assert_close(up.real, interp(x.real))
    torch.testing.assert_close(up.imag, interp(x.imag))
