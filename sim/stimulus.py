"""Stimulus: random and corner-case matrix products, with a reported seed."""
from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from ..config import AcceleratorConfig
from ..dtypes import DType
from .golden import encode


@dataclass(frozen=True)
class Product:
    """One matrix product ``init + a @ b`` to push through the hardware."""

    label: str
    a: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    init: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(M, N, K)."""
        return self.a.shape[0], self.b.shape[1], self.a.shape[1]


def array_limits(config: AcceleratorConfig) -> tuple[int | None, int | None, int | None]:
    """Largest (M, N, K) one pass of the bare array holds; None means unlimited.

    Output-stationary: M <= rows (x ``mac_stages``: the row groups), N <= cols, any K.
    Weight-stationary: K <= rows, N <= cols, any M.
    """
    if config.dataflow == "os":
        return config.tile_m, config.cols, None
    return None, config.cols, config.rows


def check_fits(config: AcceleratorConfig, m: int, n: int, k: int) -> None:
    """Raise ValueError (naming the dimension) if M x N x K does not fit one array pass."""
    for dim, value, limit in zip("MNK", (m, n, k), array_limits(config)):
        if value < 1:
            raise ValueError(f"gemm {dim} must be >= 1, not {value}")
        if limit is not None and value > limit:
            what = "rows" if (dim in "MK") else "cols"
            raise ValueError(
                f"gemm {dim}={value} does not fit the bare {config.dataflow} array "
                f"({what}={limit}); the tiled controller lifts this limit"
            )


def random_operands(rng: np.random.Generator, dtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Random operands of ``dtype`` (int64): integers uniform over the format's range;
    floating point as raw bit patterns of standard-normal values rounded to the format
    (sums then cancel and carry as real dot products do; special values come from
    :func:`float_specials`)."""
    if dtype.kind == "float":
        return encode(rng.standard_normal(shape), dtype)
    return rng.integers(dtype.min_int, dtype.max_int, size=shape, endpoint=True, dtype=np.int64)


def random_gemm(rng: np.random.Generator, dtype: DType, M: int, N: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) of an M x N x K product with :func:`random_operands`."""
    return random_operands(rng, dtype, (M, K)), random_operands(rng, dtype, (K, N))


def float_specials(dtype: DType) -> dict[str, int]:
    """Raw bit patterns of a floating-point format's edge values: ±0, ±Inf (where the format
    has it), NaN, the largest and smallest normals, the smallest and largest subnormals, 1."""
    info = ml_dtypes.finfo(dtype.numpy_type)
    top = (1 << (dtype.bits - 1))
    values = {
        "+0": 0, "-0": top, "one": int(encode(1.0, dtype)), "minus_one": int(encode(-1.0, dtype)),
        "max": int(encode(float(info.max), dtype)), "-max": int(encode(-float(info.max), dtype)),
        "min_normal": int(encode(float(info.smallest_normal), dtype)),
        "min_subnormal": 1, "-min_subnormal": top | 1,
        "max_subnormal": (1 << dtype.man_bits) - 1,
        "nan": (1 << dtype.bits) - 1 if not dtype.has_inf else ((1 << dtype.exp_bits) - 1) << dtype.man_bits | 1,
    }
    if dtype.has_inf:
        values["inf"] = ((1 << dtype.exp_bits) - 1) << dtype.man_bits
        values["-inf"] = top | values["inf"]
    return values


def sprinkle_specials(rng: np.random.Generator, dtype: DType, x: np.ndarray, share: float = 0.1) -> np.ndarray:
    """``x`` with ``share`` of its entries replaced by :func:`float_specials` of ``dtype``."""
    edges = np.array(list(float_specials(dtype).values()), np.int64)
    return np.where(rng.random(x.shape) < share, rng.choice(edges, x.shape), x)


def _random_matrix(rng: np.random.Generator, config: AcceleratorConfig, shape: tuple[int, int]) -> np.ndarray:
    return random_operands(rng, config.input_dtype, shape)


def random_product(rng: np.random.Generator, config: AcceleratorConfig, label: str,
                   m: int | None = None, n: int | None = None, k: int | None = None,
                   max_free_dim: int = 40) -> Product:
    """A random product; unspecified dimensions are drawn within the array's limits."""
    lm, ln, lk = array_limits(config)
    m = m or int(rng.integers(1, (lm or max_free_dim) + 1))
    n = n or int(rng.integers(1, (ln or max_free_dim) + 1))
    k = k or int(rng.integers(1, (lk or max_free_dim) + 1))
    check_fits(config, m, n, k)
    return Product(label, _random_matrix(rng, config, (m, k)), _random_matrix(rng, config, (k, n)))


def _float_corners(config: AcceleratorConfig, rng: np.random.Generator, M: int, N: int, K: int) -> list[Product]:
    dt = config.input_dtype
    sp = float_specials(dt)
    full = lambda v, shape: np.full(shape, v, np.int64)  # noqa: E731
    sprinkled = lambda shape: sprinkle_specials(rng, dt, _random_matrix(rng, config, shape), 0.3)  # noqa: E731
    alternate = np.where(np.arange(K)[:, None] % 2 == 0, sp["one"], sp["minus_one"]) * np.ones((K, N), np.int64)
    return [
        Product("all_max", full(sp["max"], (M, K)), full(sp["max"], (K, N))),       # bf16 overflows to Inf
        Product("max_times_minus_max", full(sp["max"], (M, K)), full(sp["-max"], (K, N))),
        Product("tiny", full(sp["min_subnormal"], (M, K)), full(sp["min_subnormal"], (K, N))),
        Product("cancellation", full(sp["max"], (M, K)), alternate),                # sums return to exact 0
        Product("specials", sprinkled((M, K)), sprinkled((K, N))),                  # NaN, Inf x 0, Inf - Inf
        Product("zeros", np.zeros((M, K), np.int64), _random_matrix(rng, config, (K, N))),
        Product("identity", _random_matrix(rng, config, (M, K)), np.where(np.eye(K, N, dtype=bool), sp["one"], 0)),
    ]


def corner_products(config: AcceleratorConfig, rng: np.random.Generator) -> list[Product]:
    """Corner cases: extremes that overflow, zeros, identity, K = 1, one row, one column;
    floating point: overflow, underflow, exact cancellation and special values instead of
    the integer extremes."""
    dt = config.input_dtype
    lm, ln, lk = array_limits(config)
    M, N = lm or 2 * config.rows, ln or config.cols   # N is always limited (by cols)
    # K long enough that min*min (or max*max) products overflow a 32-bit accumulator
    # where the array allows it (OS: any K; WS: K <= rows, so use the preload instead).
    K = lk or 64
    full = lambda v, shape: np.full(shape, v, np.int64)  # noqa: E731
    if config.is_float:
        out = _float_corners(config, rng, M, N, K)
        for name, kw in (("k_is_1", dict(k=1)), ("one_row", dict(m=1)), ("one_col", dict(n=1))):
            out.append(random_product(rng, config, name, **kw))
        if config.dataflow == "ws":   # start from fp32 extremes: the preload path carries raw bits
            p = random_product(rng, config, "init_fp32_edges")
            init = rng.choice(np.array([0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x80000000, 0x7F800000, 0x7FC00000],
                                       np.int64), p.shape[:2])
            out.append(Product(p.label, p.a, p.b, init))
        return out
    out = [
        Product("all_min", full(dt.min_int, (M, K)), full(dt.min_int, (K, N))),
        Product("all_max", full(dt.max_int, (M, K)), full(dt.max_int, (K, N))),
        Product("min_times_max", full(dt.min_int, (M, K)), full(dt.max_int, (K, N))),
        Product("zeros", np.zeros((M, K), np.int64), _random_matrix(rng, config, (K, N))),
    ]
    out.append(Product("identity", _random_matrix(rng, config, (M, K)), np.eye(K, N, dtype=np.int64)))
    out.append(random_product(rng, config, "k_is_1", k=1))
    out.append(random_product(rng, config, "one_row", m=1))
    out.append(random_product(rng, config, "one_col", n=1))
    if config.dataflow == "os":
        return out  # the OS array always starts from zero: overflow comes from long K
    # Start near the accumulator's limits so that a few more products overflow it.
    for name, edge in (("init_near_max", config.acc_max), ("init_near_min", config.acc_min)):
        p = random_product(rng, config, name)
        mm, nn, _ = p.shape
        offset = -(1 << (dt.product_bits - 1)) if edge == config.acc_max else (1 << (dt.product_bits - 1))
        init = np.full((mm, nn), edge, np.int64) + offset
        init = np.clip(init, config.acc_min, config.acc_max)
        out.append(Product(name, p.a, p.b, init))
    return out


def campaign(config: AcceleratorConfig, *, count: int, seed: int, corners: bool = True) -> list[Product]:
    """``count`` random products (seeded) followed by the corner cases."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, not {count!r}")
    rng = np.random.default_rng(seed)
    products = [random_product(rng, config, f"random_{i}") for i in range(count)]
    if corners:
        products += corner_products(config, rng)
    return products
