"""nginx in front of N web processes: templates and their renderer (render.py)."""
