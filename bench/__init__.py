"""dcgan-bench: benchmark tasks on trained DCGAN checkpoints."""
