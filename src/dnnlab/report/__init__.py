"""Reports: a `Document` rendered to Markdown and standalone HTML, and the one figure helper."""
