"""Fixtures of this folder's tests (defined in gateway_testkit, importable by name from the tests)."""

from gateway_testkit import *  # noqa: F403
