"""Shipped sample data and defaults (installed as ``dainr.resources``)."""
