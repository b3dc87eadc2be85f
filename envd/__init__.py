"""envd: declarative, reproducible container environments that stay converged.

Kept import-free on purpose: ``python -m envd.init`` must start in a few
milliseconds without pulling in pydantic or the Docker SDK.
"""

__version__ = "0.1.0"
