"""The spec: typed models of ``envd.toml`` and the pure pipeline that loads it."""
