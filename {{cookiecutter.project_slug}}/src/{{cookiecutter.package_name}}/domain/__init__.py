"""The service's own domain: models and the stores behind them."""
