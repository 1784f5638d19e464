"""RESULTS.md (bench.report.markdown, one module per part of it) and the PNG charts
(bench.report.charts), from the raw results of one run."""
