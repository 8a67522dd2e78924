"""Realism and controllability metrics: generated scenes against reference scenes on the same maps.

Each metric is a small pure function (see the submodules); :func:`sd_sim_plugin.metrics.suite.evaluate` runs them all.
"""
