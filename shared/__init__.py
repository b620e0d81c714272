"""Tuantibu's common package: what every service shares, one module per concern."""

import warnings

# eventlet announces on import that it is deprecated, in eight lines on stderr. The
# choice of Nameko 2 with eventlet is made (DESIGN.md); the notice would only bury what
# an operator's command prints. (``nameko run`` imports eventlet before this runs, so a
# service's log still shows it once at start.)
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
