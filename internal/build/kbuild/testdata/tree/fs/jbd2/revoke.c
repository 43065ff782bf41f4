// Empty stand-in for fs/jbd2/revoke.c of Linux 6.1.176.
