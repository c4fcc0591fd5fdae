"""Shared pytest setup: a bounded hypothesis profile so property tests stay fast on 2 cores.

Select another profile with ``pytest --hypothesis-profile=thorough``.
"""
import os
import sys

from hypothesis import HealthCheck, settings

# let tests import the float64 references in tests/reference.py as `reference`
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile("conv3d", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "conv3d"))
