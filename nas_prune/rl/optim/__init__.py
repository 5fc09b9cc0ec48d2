"""The fast MLP training path: flat parameter buffers, hand-written backward and losses."""
