"""Benchmarks of the invoker function against the textbook Powertools handler (`python -m bench`).

See bench/README.md for what each figure includes and how the processes are laid out on the CPUs."""
