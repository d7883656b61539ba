"""Reports of evaluation runs: markdown + plots (the main job's report.md)."""
