"""Page views of the site, one module per area."""
