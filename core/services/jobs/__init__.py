"""The scheduled jobs: daily stats, weekly cleanup, withdrawal reminders, each once per period."""
