"""Tests for cnnkit.data (a package, so module names like test_build do not clash with other folders)."""
