"""GEMM libraries' own kernel choices, as each library publishes them: which output tile
(CTA block) its kernels run for a shape, and how its grouped (MoE) GEMMs lay out their
groups.

The GPU model (:mod:`~systolab.models.gpu.model`) reads cuBLAS-class kernels by choosing
the fastest of its tiles and split-K factors, as cuBLAS's heuristics try to. A library
with a published, deterministic rule instead runs the tile its rule picks, even where
another would be faster; the model follows the rule.

**DeepGEMM** (github.com/deepseek-ai/DeepGEMM, ``deep_gemm/jit_kernels/gemm.py:
get_best_configs`` and ``include/deep_gemm/scheduler.cuh`` at commit 78cacf7,
2025-02-26, the commit of the H800 table in ``data/gemm_heldout.csv``):

* one persistent kernel of as many CTAs as SMs walks the output blocks; no split-K;
* ``BLOCK_M`` is 64 when M <= 64, else 128; the contiguous grouped layout always uses
  128, the alignment each group is padded to (``get_m_alignment_for_contiguous_layout``);
* ``BLOCK_N`` is one of 16, 24, ..., 128: the fewest waves of blocks over the SMs, then
  the fullest last wave, then the widest block;
* the grouped **contiguous** layout concatenates the groups' rows (each padded to 128)
  and picks its block as for one GEMM of the summed M;
* the grouped **masked** layout keeps a fixed ``[groups, M_max, K]`` buffer and picks its
  block from ``expected_m`` (a hint: the rows a group is expected to hold) and the group
  count; its scheduler then walks each group's own blocks (``ceil(masked_m / BLOCK_M)``
  of them), skipping the masked rows, so the work is the groups' actual rows while the
  tile was chosen for the hint;
* TMA multicast of the A operand over a cluster of 2 CTAs only when M >= 1024 and the
  call is not grouped by the masked layout (``num_groups == 1`` in its rule).
"""
from __future__ import annotations

import math

#: DeepGEMM's candidate BLOCK_N (get_best_configs: range(16, 129, 8)).
DEEPGEMM_BLOCK_N = tuple(range(16, 129, 8))
#: The row alignment of DeepGEMM's contiguous layout, and its BLOCK_M there.
DEEPGEMM_CONTIGUOUS_ALIGN = 128
#: The grouped layouts DeepGEMM runs (its kernels' GemmType).
LAYOUTS = ("contiguous", "masked")


def deepgemm_block(m: int, n: int, groups: int, sms: int, *, contiguous: bool = False) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_N) DeepGEMM runs for ``groups`` products of ``m`` x ``n`` outputs
    on ``sms`` SMs: its published rule, fewest waves, then the fullest last wave, then
    the widest block (the module's docstring). ``contiguous``: the contiguous grouped
    layout, ``m`` the summed (padded) rows and ``groups`` 1."""
    block_m = DEEPGEMM_CONTIGUOUS_ALIGN if contiguous else (64 if m <= 64 else 128)
    best: tuple[tuple[int, int, int], int] | None = None
    for block_n in DEEPGEMM_BLOCK_N:
        blocks = math.ceil(m / block_m) * math.ceil(n / block_n) * groups
        last = blocks % sms or sms
        key = (math.ceil(blocks / sms), -last, -block_n)
        if best is None or key < best[0]:
            best = (key, block_n)
    assert best is not None
    return block_m, best[1]


def deepgemm_multicast(m: int, n: int, block_n: int, groups: int, sms: int) -> int:
    """CTAs that share one load of an A block (TMA multicast), as DeepGEMM's rule sets it:
    2 when M >= 1024, the call is not grouped by the masked layout (``groups`` 1) and the
    N blocks and the SMs pair up evenly; else 1."""
    legal = n % (2 * block_n) == 0 and sms % 2 == 0
    return 2 if m >= 1024 and groups == 1 and legal else 1
