"""Tuantibu's common package: what every service shares, one module per concern."""
