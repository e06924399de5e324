"""What runs produce, as frozen values that flow one way: steps make them, the engine collects and judges
them, reporters render them. Nothing in this package imports the engine, the steps or the reporters."""
