"""Fixtures of this folder's tests (defined in catalogue_testkit, importable by name from the tests)."""

from catalogue_testkit import *  # noqa: F403
