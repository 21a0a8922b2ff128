"""ML products: one deployed model line each, with its feature schema and owner team."""
