"""Net Designer's Qt program: a view and a controller over the engine. Nothing imports it."""
