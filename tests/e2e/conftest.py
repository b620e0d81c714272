"""The end-to-end tests use the session stack (``running``) from ``tests/conftest.py``."""
