"""Raw event schema, loading, validation and quarantine."""
