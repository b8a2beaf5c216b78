"""Analyses of a generator: droplets, directions in W, style channels that control a region."""
