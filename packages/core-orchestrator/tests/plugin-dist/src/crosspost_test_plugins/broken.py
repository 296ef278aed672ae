"""A plugin module that cannot be imported (as when a plugin's dependency is missing)."""

raise ImportError("No module named 'missing_dependency_of_broken_plugin'")
