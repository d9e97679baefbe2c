"""Weak supervision: labeling rules, the vectorised applier, analysis and the label model."""
