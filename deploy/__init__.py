"""Deployment configuration kept with the code (nginx in front of the web tier)."""
