"""End-to-end tests: each module starts kubi and drives it with the real kubectl."""
