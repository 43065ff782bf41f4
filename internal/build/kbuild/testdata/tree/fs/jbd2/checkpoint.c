// Empty stand-in for fs/jbd2/checkpoint.c of Linux 6.1.176.
