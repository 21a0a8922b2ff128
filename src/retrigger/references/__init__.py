"""References: versioned baseline distributions of a product's features, profiled once."""
