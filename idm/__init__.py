"""Inverse-dynamics models: consecutive (imagined) frames -> actions. Arriving with the IDM issue."""
