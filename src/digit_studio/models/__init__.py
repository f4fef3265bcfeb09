"""Neural networks of the studio."""
