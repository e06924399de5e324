"""Vulnerability scanning, tool-independent: the finding model, the parsers, merge, gate and VEX."""

from __future__ import annotations

from sc_ci.scan.gate import GatePolicy, IgnoreRule, Verdict, evaluate, load_ignore_file
from sc_ci.scan.interface import Finding, FixState, ScannerReport, ScanOutputError, Severity
from sc_ci.scan.merge import MergeResult, merge

__all__ = [
    "Finding",
    "FixState",
    "GatePolicy",
    "IgnoreRule",
    "MergeResult",
    "ScanOutputError",
    "ScannerReport",
    "Severity",
    "Verdict",
    "evaluate",
    "load_ignore_file",
    "merge",
]
