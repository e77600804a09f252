"""The legal layer: dated ECCN 3A090 rule sets and the classification of GPUs and custom
chips; who may buy which GPU, and from when (dated licence policies by destination); whether
a foundry must presume a custom chip is 3A090.a (the due-diligence rule)."""
from .build import Buildability, buildability, legal
from .export_control import (
    ExportClass,
    RuleSet,
    check_allowed,
    classify,
    classify_chip,
    classify_custom,
    classify_gpu,
    load_rules,
    rule_set_for,
)
from .foundry import FoundryCheck, chip_foundry_check, foundry_presumption
from .purchase import Purchasability, Scenario, load_licence_rules, purchasability, scenario

__all__ = [
    "Buildability", "buildability", "legal",
    "check_allowed", "classify", "classify_chip", "classify_custom", "classify_gpu", "ExportClass", "load_licence_rules",
    "load_rules", "purchasability", "Purchasability", "rule_set_for", "RuleSet", "scenario", "Scenario",
    "chip_foundry_check", "FoundryCheck", "foundry_presumption",
]
