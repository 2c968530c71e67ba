"""One adapter per delivery channel: it sends a batch through its provider and reads its errors."""
