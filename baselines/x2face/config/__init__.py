"""Packaged configs of X2Face (a package so that the YAML ships in wheels)."""
