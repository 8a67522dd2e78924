"""Speed benchmarks: one module per area, each with ``main()``; ``python -m benchmarks`` runs them all."""
