"""Research code that only benchmarks and tests import: synthetic drawings of numbers and the explanation
sanity checks (which train models)."""
