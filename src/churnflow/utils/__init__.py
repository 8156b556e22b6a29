"""Small shared helpers: atomic writes, hashing, logging."""
