"""Code generation: programs and fused groups to kernel source."""
