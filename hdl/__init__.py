"""Amaranth hardware generators: MAC units, processing elements, systolic arrays."""
from .array import OutputStationaryArray, WeightStationaryArray, array_signature, build_array
from .mac import IntegerMac
from .pe import OutputStationaryPE, WeightStationaryPE
from .verilog import generate_verilog

__all__ = [
    "IntegerMac", "OutputStationaryPE", "WeightStationaryPE",
    "OutputStationaryArray", "WeightStationaryArray", "array_signature", "build_array", "generate_verilog",
]
