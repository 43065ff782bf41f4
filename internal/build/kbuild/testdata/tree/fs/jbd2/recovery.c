// Empty stand-in for fs/jbd2/recovery.c of Linux 6.1.176.
