"""videojobs: one status protocol over AI video vendors' task APIs."""

__all__: list[str] = []
