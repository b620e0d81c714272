"""The services, one package each. ``shared`` is imported first, for its warning filter."""

import shared  # noqa: F401
