"""The benchmark's sections, one module per family; each returns its part of the run's document
(bench.measurements). bench.run calls them in order.

Invoker and textbook handler get the same messages (same seeds) from the same emulator endpoint, one
after the other, in the same run."""
