"""recfunnel: a two-tower candidate generator, a ranker and a re-ranker, measured and servable."""

__version__ = "0.1.0"
