"""Cilium: the recipe (``recipe``), what it reports about itself (``status``), and its
security identities (``identity``)."""
