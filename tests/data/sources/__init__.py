"""Tests for cnnkit.data.sources: one module per source, as in the package."""
