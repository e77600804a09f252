"""Amaranth hardware generators: MAC units, processing elements, systolic arrays."""
from .array import OutputStationaryArray, WeightStationaryArray, array_signature, build_array
from .float_add import Fp32Adder, Fp32SumTree
from .float_mac import FloatMac
from .mac import IntegerMac, mac_for
from .pe import OutputStationaryPE, WeightStationaryPE
from .verilog import generate_verilog

__all__ = [
    "IntegerMac", "FloatMac", "mac_for", "OutputStationaryPE", "WeightStationaryPE",
    "OutputStationaryArray", "WeightStationaryArray", "array_signature", "build_array", "generate_verilog",
]
__all__ += ["Fp32Adder", "Fp32SumTree"]          # the write-back's fp32 split-K sum
