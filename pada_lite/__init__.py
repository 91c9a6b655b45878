"""pada-lite: consistent one-shot NAS (PA&DA path and data importance sampling) on NAS-Bench-201."""
__version__ = "0.1.0"
