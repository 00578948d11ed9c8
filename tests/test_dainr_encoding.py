"""Frequency encoding (paper §2.1): values, widths, order."""

import math

import torch

from dainr.methods.dainr.encoding import FrequencyEncoding, frequency_encoding


def test_values_on_hand_computed_point():
    p = torch.tensor([[0.25]])
    out = frequency_encoding(p, 3)
    # [p, sin(pi p), cos(pi p), sin(2 pi p), cos(2 pi p), sin(4 pi p), cos(4 pi p)]
    s2 = math.sqrt(0.5)
    expected = torch.tensor([[0.25, s2, s2, 1.0, 0.0, 0.0, -1.0]])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_two_dimensional_order_and_widths():
    p = torch.tensor([[0.5, -1.0]])
    out = frequency_encoding(p, 2)
    # sin/cos of both coordinates per frequency: [x, y, sin(pi x), sin(pi y), cos(pi x), cos(pi y), ...]
    expected = torch.tensor([[0.5, -1.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, -1.0, 1.0]])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    # the paper's I = 10 for (x, y) and I = 6 for t, with the raw input kept: 42 and 13 wide
    assert (
        FrequencyEncoding(2, 10).out_dim == 42 == frequency_encoding(torch.zeros(5, 2), 10).shape[1]
    )
    assert (
        FrequencyEncoding(1, 6).out_dim == 13 == frequency_encoding(torch.zeros(5, 1), 6).shape[1]
    )


def test_without_input_and_batch_shapes():
    p = torch.rand(3, 4, 2)
    out = frequency_encoding(p, 5, include_input=False)
    assert out.shape == (3, 4, 20)
    torch.testing.assert_close(out[..., 0:2], torch.sin(math.pi * p))
    torch.testing.assert_close(out[..., 18:20], torch.cos(16 * math.pi * p))
