"""Test suite for the notification platform."""
