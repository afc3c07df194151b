"""Generated from protos/ by tools/gen_api.py. Do not edit."""
