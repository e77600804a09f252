import numpy as np
import pytest

from systolab import AcceleratorConfig
from systolab.sim.golden import golden_matmul, wrap_to


def test_small_exact_product():
    cfg = AcceleratorConfig()
    a = np.array([[1, -2], [3, 4]])
    b = np.array([[5, 6], [-7, 8]])
    assert golden_matmul(a, b, cfg).tolist() == [[19, -10], [-13, 50]]


def test_wrap_is_modulo_two_to_the_acc_bits():
    cfg = AcceleratorConfig(acc_bits=16, overflow="wrap")
    a = np.full((1, 3), -128)
    b = np.full((3, 1), -128)
    # 3 * 16384 = 49152 -> 49152 - 65536 = -16384 in a signed 16-bit accumulator
    assert golden_matmul(a, b, cfg).tolist() == [[-16384]]


def test_saturate_clamps_at_every_step_in_ascending_k():
    cfg = AcceleratorConfig(acc_bits=16, overflow="saturate")
    a = np.array([[-128, -128, 127]])
    b = np.array([[-128], [-128], [-128]])
    # 16384 -> 32767 (clamped from 32768) -> 32767 - 16256 = 16511.
    # Clamping only at the end would give 16512: the order is part of the contract.
    assert golden_matmul(a, b, cfg).tolist() == [[16511]]


def test_unsigned_saturate_and_wrap():
    a = np.full((1, 2), 255)
    b = np.full((2, 1), 255)
    assert golden_matmul(a, b, AcceleratorConfig(dtype="uint8", acc_bits=16, overflow="saturate")).tolist() == [[65535]]
    assert golden_matmul(a, b, AcceleratorConfig(dtype="uint8", acc_bits=16)).tolist() == [[(2 * 65025) % 65536]]


def test_init_and_64_bit_accumulators():
    cfg = AcceleratorConfig(acc_bits=64, overflow="saturate")
    init = np.array([[(1 << 63) - 10]])
    assert golden_matmul(np.array([[100]]), np.array([[100]]), cfg, init).tolist() == [[(1 << 63) - 1]]
    wrap = AcceleratorConfig(acc_bits=64)
    assert golden_matmul(np.array([[100]]), np.array([[100]]), wrap, init).tolist() == [[-(1 << 63) + 9990]]


def test_random_wrap_matches_python_integers():
    rng = np.random.default_rng(5)
    cfg = AcceleratorConfig(dtype="int16", acc_bits=40)
    a = rng.integers(-32768, 32767, (7, 300))
    b = rng.integers(-32768, 32767, (300, 5))
    exact = [[sum(int(a[i, k]) * int(b[k, j]) for k in range(300)) for j in range(5)] for i in range(7)]
    expect = [[((v + (1 << 39)) % (1 << 40)) - (1 << 39) for v in row] for row in exact]
    assert golden_matmul(a, b, cfg).tolist() == expect


def test_bad_inputs():
    cfg = AcceleratorConfig()
    with pytest.raises(ValueError, match="inner dimensions"):
        golden_matmul(np.zeros((2, 3), int), np.zeros((2, 3), int), cfg)
    with pytest.raises(ValueError, match="outside the int8 range"):
        golden_matmul(np.array([[200]]), np.array([[1]]), cfg)
    with pytest.raises(ValueError, match="2-D integer"):
        golden_matmul(np.zeros((2, 2)), np.zeros((2, 2)), cfg)


def test_wrap_to():
    assert wrap_to(np.array([255, 256, -129]), 8, True).tolist() == [-1, 0, 127]
    assert wrap_to(np.array([255, 256, -1]), 8, False).tolist() == [255, 0, 255]
