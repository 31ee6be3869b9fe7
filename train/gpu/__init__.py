"""Training on a lent GPU machine in one call: run.sh (the call), calibrate (how many steps fit), fp16_epochs (each
epoch's weights back at half size), make_init (the ImageNet start, fp16, to travel)."""
