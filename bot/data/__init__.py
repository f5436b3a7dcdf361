"""The edge that reads the world: sources, the store, the trading calendar."""
