"""Closed-loop agents (imitation, MPC, baselines) and ``run_agent``: arriving with the IDM and MPC issues."""
