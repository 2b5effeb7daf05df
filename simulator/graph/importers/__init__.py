"""graph/importers layer (see DESIGN.md section 2)."""
