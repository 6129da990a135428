"""The Insight dock: activations, filters, class maps, gradient flow and decisions while training runs."""

from designer.insight.panel import InsightPanel

__all__ = ["InsightPanel"]
