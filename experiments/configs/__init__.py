"""The old home of the main-job configs: each file here loads regularity_jax/configs/<name>.py."""
