"""Export control: dated ECCN 3A090 rule sets and the classification of GPUs and custom chips."""
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

__all__ = [
    "check_allowed", "classify", "classify_chip", "classify_custom", "classify_gpu", "ExportClass", "load_rules",
    "rule_set_for", "RuleSet",
]
