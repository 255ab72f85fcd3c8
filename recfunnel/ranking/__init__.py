"""Scoring: a richer model that reorders the retrieval stage's candidates."""
