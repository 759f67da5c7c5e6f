"""Plots (matplotlib) and the self-contained HTML report of a run folder."""

from rewardlab.report.build import build_report

__all__ = ["build_report"]
