"""Integration tests that run the real web, worker and beat processes."""
