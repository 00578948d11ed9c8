"""Band-limited (Fourier) upsampling of complex image series.

Radial k-space reaches a disc inside the acquisition matrix's extent: what the data say
about an image on a finer grid is its spectrum inside that extent and nothing outside.
Zero-padding the spectrum of a reconstruction is then the interpolation that keeps
exactly what was measured and invents nothing; cubic interpolation instead attenuates
the upper part of the measured band and folds spurious copies of it above.

The fine grid is aligned by pixel areas, as :func:`torch.nn.functional.interpolate` with
``align_corners=False`` and DA-INR's nearest-neighbour render: coarse pixel ``q`` covers
fine pixels ``s*q .. s*q + s - 1`` for a factor ``s``, so fine pixel ``j`` sits at coarse
position ``(j + 0.5) / s - 0.5``.
"""

from __future__ import annotations

import torch


def _pad_axis(spec: torch.Tensor, axis: int, n_out: int) -> torch.Tensor:
    """Centred spectrum (``fftshift`` order) along ``axis`` zero-padded to ``n_out``; an even
    input's Nyquist bin is split between the two frequencies ``±n/2`` it stands for."""
    n = spec.shape[axis]
    if n_out == n:
        return spec
    shape = list(spec.shape)
    shape[axis] = n_out
    out = spec.new_zeros(shape)
    start = n_out // 2 - n // 2  # keeps frequency 0 at index size // 2
    out.narrow(axis, start, n).copy_(spec)
    if n % 2 == 0:
        nyq = spec.narrow(axis, 0, 1) * 0.5
        out.narrow(axis, start, 1).copy_(nyq)
        out.narrow(axis, start + n, 1).copy_(nyq)
    return out


def _upsampled_spectrum(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centred spectrum (``fftshift`` order) of :func:`fourier_upsample`'s result."""
    ny, nx = x.shape[-2:]
    if height < ny or width < nx:
        raise ValueError(f"fourier_upsample only enlarges: {ny}x{nx} -> {height}x{width}")
    x = x.to(torch.complex64) if not x.is_complex() else x
    spec = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
    for axis, n, n_out in ((-2, ny, height), (-1, nx, width)):
        spec = _pad_axis(spec, axis, n_out)
        # shift by -(1 - n/n_out)/2 coarse pixels: fine pixel j then samples the band-limited
        # image at coarse position (j + 0.5) * n / n_out - 0.5
        delta = -0.5 * (1.0 - n / n_out)
        f = torch.arange(n_out, device=x.device, dtype=torch.float64) - n_out // 2
        ramp = torch.exp(2j * torch.pi * f * delta / n).to(spec.dtype)
        shape = [1] * spec.ndim
        shape[axis] = n_out
        spec = spec * ramp.reshape(shape)
    return spec * ((height * width) / (ny * nx))  # ifft2 divides by the larger grid's size


def _image(spec: torch.Tensor) -> torch.Tensor:
    """Images of centred spectra."""
    return torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-2, -1)))


def fourier_upsample(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Complex images ``x[..., ny, nx]`` -> ``[..., height, width]`` (each at least as
    large) by zero-padding their centred spectra, pixel areas aligned."""
    if (height, width) == tuple(x.shape[-2:]):
        return x
    return _image(_upsampled_spectrum(x, height, width))


def cubic_upsample(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Complex images ``x[..., ny, nx]`` -> ``[..., height, width]`` by bicubic
    interpolation of the real and imaginary parts, pixel areas aligned."""
    ny, nx = x.shape[-2:]
    lead = x.shape[:-2]
    planes = torch.view_as_real(x.to(torch.complex64).reshape(-1, ny, nx)).permute(0, 3, 1, 2)
    up = torch.nn.functional.interpolate(
        planes, size=(height, width), mode="bicubic", align_corners=False
    )
    out = torch.view_as_complex(up.permute(0, 2, 3, 1).contiguous())
    return out.reshape(*lead, height, width)


def _band_mask(n: int, n_out: int, device: torch.device) -> torch.Tensor:
    """Bool ``[n_out]``: the centred bins a grid of ``n`` covers (both halves of an even
    grid's split Nyquist bin included)."""
    start = n_out // 2 - n // 2
    idx = torch.arange(n_out, device=device)
    return (idx >= start) & (idx <= start + n - (1 if n % 2 else 0))


def replace_band(fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
    """``fine[..., H, W]`` with the part of its spectrum that the grid of ``coarse[..., ny,
    nx]`` covers replaced by ``coarse``'s (pixel areas aligned as in
    :func:`fourier_upsample`): the band from one image, the detail beyond from the other."""
    H, W = fine.shape[-2:]
    ny, nx = coarse.shape[-2:]
    spec_c = _upsampled_spectrum(coarse, H, W)
    spec_f = torch.fft.fftshift(torch.fft.fft2(fine.to(spec_c.dtype)), dim=(-2, -1))
    band = _band_mask(ny, H, fine.device)[:, None] & _band_mask(nx, W, fine.device)[None, :]
    return _image(torch.where(band, spec_c, spec_f))


__all__ = ["cubic_upsample", "fourier_upsample", "replace_band"]
