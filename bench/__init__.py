"""Benchmarks of the platform side by side with the Node.js socket.io peer (python -m bench)."""
