// Empty stand-in for fs/jbd2/commit.c of Linux 6.1.176.
