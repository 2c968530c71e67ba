"""Helpers that start real processes and talk to them for integration tests."""
