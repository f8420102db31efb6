"""Stream views, one module per area: thin wiring of producer to encoder."""
