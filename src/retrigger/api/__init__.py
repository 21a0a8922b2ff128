"""The HTTP edge: dependencies, error rendering, middleware, pagination, health and routing."""
