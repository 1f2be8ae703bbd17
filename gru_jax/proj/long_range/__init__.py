"""The long-range dependency study: design, search, report."""
